"""The model server stand-in answers as the documents say the real servers do."""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.modelserver import ModelServerStandIn, publish


def call(
    server: ModelServerStandIn, method: str, path: str, body: bytes | None = None
) -> tuple[int, str, str]:
    """Status, Content-Type and body of one raw request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read().decode()
    finally:
        conn.close()


def status_doc(server: ModelServerStandIn, name: str) -> object:
    code, ctype, body = call(server, "GET", f"/v1/models/{name}")
    assert (code, ctype) == (200, "application/json")
    return json.loads(body)


def entry(version: int, state: str, error: str = "") -> dict[str, object]:
    code = "UNKNOWN" if error else "OK"
    return {
        "version": str(version),
        "state": state,
        "status": {"error_code": code, "error_message": error},
    }


@pytest.fixture
def tfs(repo: Path) -> Iterator[ModelServerStandIn]:
    with ModelServerStandIn(repo, "tfserving", poll=None) as server:
        yield server


def test_tf_serving_status_follows_a_rollout_and_keeps_end_entries(
    repo: Path, tfs: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 1)
    tfs.scan()
    assert status_doc(tfs, "resnet") == {"model_version_status": [entry(1, "AVAILABLE")]}

    publish(repo, "resnet", 2)
    seen = []
    for _ in range(3):
        tfs.scan()
        seen.append(status_doc(tfs, "resnet"))

    assert seen == [
        {"model_version_status": [entry(2, "AVAILABLE"), entry(1, "AVAILABLE")]},
        {"model_version_status": [entry(2, "AVAILABLE"), entry(1, "UNLOADING")]},
        {"model_version_status": [entry(2, "AVAILABLE"), entry(1, "END")]},
    ]
    code, _, body = call(tfs, "GET", "/v1/models/resnet/versions/1")
    assert (code, json.loads(body)) == (200, {"model_version_status": [entry(1, "END")]})


def test_without_overlap_a_replaced_version_unloads_in_the_pass_its_successor_loads(
    repo: Path,
) -> None:
    publish(repo, "resnet", 1)
    with ModelServerStandIn(repo, "tfserving", poll=None, overlap=False) as server:
        publish(repo, "resnet", 2)
        server.scan()
        assert server.states("resnet") == {1: "UNLOADING", 2: "AVAILABLE"}
        server.scan()
        assert server.states("resnet") == {1: "END", 2: "AVAILABLE"}


def test_tf_serving_answers_404_for_an_unknown_model_and_400_for_other_paths(
    tfs: ModelServerStandIn,
) -> None:
    unknown = call(tfs, "GET", "/v1/models/nope")
    malformed = call(tfs, "POST", "/v1/models/nope")

    assert unknown == (
        404,
        "application/json",
        '{"error": "Could not find any versions of model nope"}',
    )
    assert malformed[0] == 400
    assert json.loads(malformed[2]) == {"error": "Malformed request: POST /v1/models/nope"}
    assert tfs.requests == [("GET", "/v1/models/nope"), ("POST", "/v1/models/nope")]


def test_tf_serving_reports_a_broken_version_as_end_with_an_error_and_keeps_the_old_one(
    repo: Path, tfs: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 1)
    tfs.scan()
    broken = publish(repo, "resnet", 2)
    tfs.broken.add(("resnet", 2))
    tfs.scan()
    tfs.scan()

    error = f"Data loss: Can't parse {broken}/saved_model.pb as binary proto"
    assert status_doc(tfs, "resnet") == {
        "model_version_status": [entry(2, "END", error), entry(1, "AVAILABLE")]
    }
    assert tfs.served("resnet") == 1


def test_a_version_is_loading_for_the_load_delay(repo: Path) -> None:
    publish(repo, "resnet", 1)
    with ModelServerStandIn(repo, "tfserving", poll=None, load_delay=30) as server:
        assert server.states("resnet") == {1: "LOADING"}
        assert call(server, "GET", "/v1/models/resnet")[0] == 200
        assert server.served("resnet") is None


def test_v2_ready_is_200_with_no_body_or_400_with_tritons_error(repo: Path) -> None:
    publish(repo, "resnet", 1)
    publish(repo, "resnet", 2)
    with ModelServerStandIn(repo, "kserve-v2", poll=None) as server:
        ready = call(server, "GET", "/v2/models/resnet/versions/2/ready")
        older = call(server, "GET", "/v2/models/resnet/versions/1/ready")
        unknown = call(server, "GET", "/v2/models/nope/versions/1/ready")
        latest = call(server, "GET", "/v2/models/resnet/ready")
        load = call(server, "POST", "/v2/repository/models/resnet/load", b"{}")

    assert ready[0::2] == (200, "")
    not_ready = (400, '{"error": "Model version not ready"}')
    assert older[0::2] == unknown[0::2] == not_ready  # "latest 1": version 1 is never loaded
    assert latest[0::2] == (200, "")
    assert load[0::2] == (
        503,
        '{"error": "explicit model load / unload is not allowed if polling is enabled"}',
    )


def test_triton_explicit_loads_only_when_asked_and_answers_tritons_errors(repo: Path) -> None:
    publish(repo, "resnet", 1, config=True)
    publish(repo, "noconfig", 1)
    (repo / "empty").mkdir()
    (repo / "empty" / "config.pbtxt").write_text('name: "empty"\n')
    with ModelServerStandIn(repo, "triton-explicit", require_config=True) as server:
        before = call(server, "GET", "/v2/models/resnet/versions/1/ready")
        loaded = call(server, "POST", "/v2/repository/models/resnet/load", b"{}")
        after = call(server, "GET", "/v2/models/resnet/versions/1/ready")
        errors = {
            name: call(server, "POST", f"/v2/repository/models/{name}/load")[0::2]
            for name in ("nope", "noconfig", "empty")
        }
        bad_body = call(server, "POST", "/v2/repository/models/resnet/load", b"[")

    assert (before[0], loaded[0::2], after[0]) == (400, (200, ""), 200)
    assert errors == {
        "nope": (400, '{"error": "failed to load \'nope\', failed to poll from model repository"}'),
        "noconfig": (
            400,
            '{"error": "failed to load \'noconfig\', failed to poll from model repository"}',
        ),
        "empty": (400, '{"error": "failed to load \'empty\', no version is available"}'),
    }
    assert bad_body[0] == 400
    assert json.loads(bad_body[2])["error"].startswith("failed to parse the request JSON buffer")


def test_triton_explicit_keeps_the_old_version_when_the_new_one_fails(repo: Path) -> None:
    publish(repo, "resnet", 1)
    with ModelServerStandIn(repo, "triton-explicit") as server:
        assert call(server, "POST", "/v2/repository/models/resnet/load")[0] == 200
        publish(repo, "resnet", 2)
        server.broken.add(("resnet", 2))
        failed = call(server, "POST", "/v2/repository/models/resnet/load")
        server.broken.clear()
        publish(repo, "resnet", 3)
        reloaded = call(server, "POST", "/v2/repository/models/resnet/load")

        assert failed[0::2] == (
            400,
            '{"error": "failed to load \'resnet\', versions that are not available: 2"}',
        )
        assert reloaded[0] == 200
        assert server.states("resnet") == {1: "END", 2: "END", 3: "AVAILABLE"}


def test_a_down_server_answers_503_to_everything(repo: Path) -> None:
    publish(repo, "resnet", 1)
    with ModelServerStandIn(repo, "kserve-v2", poll=None) as server:
        server.down = True
        answers = [
            call(server, "GET", "/v2/models/resnet/versions/1/ready")[0],
            call(server, "GET", "/v2/health/ready")[0],
        ]
        server.down = False
        answers.append(call(server, "GET", "/v2/models/resnet/versions/1/ready")[0])

    assert answers == [503, 503, 200]


@pytest.mark.parametrize("kind", ["tfserving", "kserve-v2", "triton-explicit"])
def test_deleting_a_served_folder_is_recorded_as_a_violation(repo: Path, kind: str) -> None:
    publish(repo, "resnet", 1)
    with ModelServerStandIn(repo, kind, poll=None) as server:
        if kind == "triton-explicit":
            assert call(server, "POST", "/v2/repository/models/resnet/load")[0] == 200
        assert server.served("resnet") == 1
        assert server.violations == []

        shutil.rmtree(repo / "resnet" / "1")

        assert server.violations == [
            f"resnet version 1 is AVAILABLE but {repo / 'resnet' / '1'} is gone"
        ]


def test_deleting_a_replaced_folder_after_it_is_unloaded_is_no_violation(
    repo: Path, tfs: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 1)
    tfs.scan()
    publish(repo, "resnet", 2)
    tfs.scan()
    assert tfs.states("resnet") == {1: "AVAILABLE", 2: "AVAILABLE"}
    tfs.scan()
    assert tfs.states("resnet") == {1: "UNLOADING", 2: "AVAILABLE"}

    shutil.rmtree(repo / "resnet" / "1")
    tfs.scan()

    assert tfs.violations == []
    assert tfs.served("resnet") == 2


def test_single_model_name_serves_the_repository_itself(repo: Path) -> None:
    publish(repo, "", 4)
    with ModelServerStandIn(repo, "tfserving", poll=None, single_model_name="models") as server:
        doc = status_doc(server, "models")

    assert doc == {"model_version_status": [entry(4, "AVAILABLE")]}


def _config_file(path: Path, repo: Path, policy: str = "", labels: str = "") -> Path:
    path.write_text(
        "model_config_list {\n  config {\n    name: 'resnet'\n"
        f'    base_path: "{repo / "resnet"}"\n    model_platform: "tensorflow"\n'
        f"{policy}{labels}  }}\n}}\n"
    )
    return path


SPECIFIC_1 = "    model_version_policy { specific { versions: 1 } }\n"
SPECIFIC_1_2 = "    model_version_policy {\n      specific {\n versions: 1\n versions: 2 } }\n"
STABLE_1 = "    version_labels { key: 'stable' value: 1 }\n"


def test_tf_serving_with_a_config_file_serves_the_specific_versions_it_names(
    repo: Path, tmp_path: Path
) -> None:
    publish(repo, "resnet", 1)
    publish(repo, "resnet", 2)
    publish(repo, "other", 1)  # a folder the file does not name: not a model
    config = _config_file(tmp_path / "models.config", repo)
    with ModelServerStandIn(repo, "tfserving", poll=None, config_file=config) as server:
        assert server.served("resnet") == 2  # no policy: latest 1
        assert server.served("other") is None
        _config_file(config, repo, SPECIFIC_1)
        server.scan()
        assert server.states("resnet") == {1: "AVAILABLE", 2: "AVAILABLE"}  # 1 up, then 2 goes
        server.scan()
        assert server.states("resnet") == {1: "AVAILABLE", 2: "UNLOADING"}
        assert server.served("resnet") == 1
        assert status_doc(server, "resnet") == {
            "model_version_status": [entry(2, "UNLOADING"), entry(1, "AVAILABLE")]
        }
        config.write_text("model_config_list { config { name: 'resnet' ")
        server.scan()
        assert server.served("resnet") == 1  # a file that does not parse changes nothing
        assert "cannot read" in server.config_errors[0]


def test_tf_serving_refuses_a_label_to_a_version_it_has_not_loaded_then_takes_it(
    repo: Path, tmp_path: Path
) -> None:
    publish(repo, "resnet", 2)
    config = _config_file(tmp_path / "models.config", repo, SPECIFIC_1_2, STABLE_1)
    with ModelServerStandIn(repo, "tfserving", poll=None, config_file=config) as server:
        assert server.config_errors == [
            "Request to assign label to version 1 of model resnet, which is not currently "
            "available for inference"
        ]
        assert server.labelled("resnet", "stable") is None
        code, _, body = call(server, "GET", "/v1/models/resnet/labels/stable")
        assert code == 404
        assert json.loads(body) == {"error": "Unrecognized servable version label: stable"}

        publish(repo, "resnet", 1)
        server.scan()  # 1 loads; the labels are assigned once it is available
        assert server.labelled("resnet", "stable") == 1
        assert status_doc(server, "resnet/labels/stable") == {
            "model_version_status": [entry(1, "AVAILABLE")]
        }
        assert server.served("resnet") == 2
