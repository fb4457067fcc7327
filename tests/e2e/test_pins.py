"""Rolling back without touching the bucket: --pin and each model's aliases object, through the
real CLI against the emulator, and with --tfs-config and --server against the TF Serving
stand-in reading the config file the way TF Serving does (tests/support/modelserver.py)."""

from __future__ import annotations

import json

from tests.e2e.conftest import Sync
from tests.support.models import sample_files
from tests.support.modelserver import ModelServerStandIn
from tests.support.probes import wait_for


def _three_versions(sync: Sync, model: str = "resnet") -> None:
    for n in (1, 2, 3):
        sync.bucket.put_zip(sync.key(f"{model}/{n}.zip"), sample_files(f"{model}{n}"))


def _aliases(sync: Sync, model: str, labels: dict[str, object]) -> None:
    sync.bucket.put(sync.key(f"{model}/aliases.json"), json.dumps(labels).encode())


def test_a_pin_rolls_back_to_an_older_version_outside_keep_then_unpinning_rolls_forward(
    sync: Sync,
) -> None:
    _three_versions(sync)
    assert sync.once("--keep", "2").returncode == 0
    assert sync.versions("resnet") == ["2", "3"]

    plan = sync.run("plan", "--keep", "2", "--pin", "resnet=1")
    assert plan.returncode == 0, plan.stderr
    assert "pinned: --pin resnet=1" in plan.stdout
    assert "newer than --pin resnet=1" in plan.stdout

    pinned = sync.once("--keep", "2", "--pin", "resnet=1")
    assert pinned.returncode == 0, pinned.stderr
    assert sync.versions("resnet") == ["1"]  # a latest-policy server now serves 1
    assert sync.version("resnet/1") == sample_files("resnet1")

    assert sync.once("--keep", "2", env={"GCS_MODEL_SYNC_PIN": "resnet=2"}).returncode == 0
    assert sync.versions("resnet") == ["1", "2"]  # --keep 2 counts from the pin

    assert sync.once("--keep", "2").returncode == 0
    assert sync.versions("resnet") == ["2", "3"]


def test_a_pinned_version_removed_from_the_bucket_stays_while_pinned(sync: Sync) -> None:
    _three_versions(sync)
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("resnet/2.zip"))

    result = sync.once("--pin", "resnet=2")
    assert result.returncode == 0, result.stderr
    assert sync.versions("resnet") == ["1", "2"]
    status = sync.run("status", "--pin", "resnet=2", "--output", "json")
    (model,) = json.loads(status.stdout)["models"]
    assert model["pin"] == 2
    assert model["in_sync"] is True
    text = sync.run("status", "--pin", "resnet=2").stdout
    assert "in sync (pinned 2)" in text

    assert sync.once().returncode == 0  # unpinned: 2 is gone from the bucket, 3 is back
    assert sync.versions("resnet") == ["1", "3"]


def test_a_pin_to_a_version_that_exists_nowhere_is_one_line_and_changes_nothing_of_its_model(
    sync: Sync,
) -> None:
    _three_versions(sync)
    sync.bucket.put_zip(sync.key("bert/1.zip"), sample_files("bert1"))
    assert sync.once("--keep", "1").returncode == 0
    sync.bucket.put_zip(sync.key("resnet/4.zip"), sample_files("resnet4"))
    sync.bucket.put_zip(sync.key("bert/2.zip"), sample_files("bert2"))

    result = sync.once("--keep", "1", "--pin", "resnet=9")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "resnet=9" in line]
    assert len(errors) == 1, result.stderr
    assert "resnet has no version 9" in errors[0]
    assert "Traceback" not in result.stderr
    assert sync.versions("resnet") == ["3"]  # nothing of resnet changed
    assert sync.versions("bert") == ["2"]  # the rest of the pass went on


def test_an_alias_keeps_its_version_installed_outside_keep_and_moves_with_the_object(
    sync: Sync,
) -> None:
    _three_versions(sync)
    _aliases(sync, "resnet", {"stable": 1, "canary": "3"})

    plan = sync.run("plan", "--keep", "1")
    assert "alias stable -> 1" in plan.stdout, plan.stdout
    assert "(stable -> 1; canary -> 3)" in sync.run("status", "--keep", "1").stdout
    assert f"gs://{sync.bucket.name}/models/resnet/aliases.json#" in plan.stdout
    result = sync.once("--keep", "1")
    assert result.returncode == 0, result.stderr
    assert sync.versions("resnet") == ["1", "3"]
    assert not (sync.dest / "resnet" / "aliases.json").exists()

    _aliases(sync, "resnet", {"stable": 3})
    assert sync.once("--keep", "1").returncode == 0
    assert sync.versions("resnet") == ["3"]


def test_an_alias_to_a_missing_version_is_one_line_naming_the_object_and_deletes_nothing(
    sync: Sync,
) -> None:
    _three_versions(sync)
    assert sync.once().returncode == 0
    _aliases(sync, "resnet", {"stable": 7})
    sync.bucket.delete(sync.key("resnet/1.zip"))

    result = sync.once("--keep", "1")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "aliases.json" in line]
    assert len(lines) == 1, result.stderr
    assert "stable names version 7" in lines[0]
    assert sync.versions("resnet") == ["1", "2", "3"]  # nothing deleted

    sync.bucket.put(sync.key("resnet/aliases.json"), b"{not json")
    broken = sync.once("--keep", "1")
    assert broken.returncode == 1
    assert "aliases.json: not a JSON object" in broken.stderr
    assert sync.versions("resnet") == ["1", "2", "3"]


def test_a_pin_with_tfs_config_rolls_the_server_back_before_the_newer_version_leaves(
    sync: Sync,
) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put_zip(sync.key("resnet/2.zip"), sample_files("b"))
    config_file = sync.dest.parent / "models.config"
    args = ("--tfs-config", str(config_file))
    assert sync.once(*args).returncode == 0
    with ModelServerStandIn(sync.dest, "tfserving", config_file=config_file) as server:
        assert server.served("resnet") == 2
        result = sync.once(*args, "--server", server.url, "--pin", "resnet=1", "-v")
        assert result.returncode == 0, result.stderr
        assert "serves resnet version 1" in result.stderr
        assert server.served("resnet") == 1
        assert sync.versions("resnet") == ["1"]
        assert "specific {\n        versions: 1\n      }" in config_file.read_text()
        assert server.config_errors == []
        assert server.violations == []  # 2 left only once the server served 1


def test_a_pin_without_tfs_config_is_confirmed_once_the_newer_versions_are_gone(
    sync: Sync,
) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put_zip(sync.key("resnet/2.zip"), sample_files("b"))
    assert sync.once().returncode == 0
    with ModelServerStandIn(sync.dest, "tfserving", load_delay=0.5) as server:
        wait_for(lambda: server.served("resnet") == 2, what="resnet served at 2")
        # A "latest"-policy server serves the pin only once the newer folder is gone: the
        # pass removes it, then waits for the server to load the pin.
        result = sync.once("--server", server.url, "--pin", "resnet=1", "-v")
        assert result.returncode == 0, result.stderr
        assert sync.versions("resnet") == ["1"]
        assert "serves resnet version 1" in result.stderr
        assert server.served("resnet") == 1


def test_aliases_become_version_labels_the_server_accepts(sync: Sync) -> None:
    _three_versions(sync)
    _aliases(sync, "resnet", {"stable": 1, "canary": 3})
    config_file = sync.dest.parent / "models.config"
    args = ("--keep", "1", "--tfs-config", str(config_file))
    assert sync.once(*args).returncode == 0
    # A label follows its version one pass later: TF Serving refuses a label to a version
    # it has not loaded yet.
    assert "specific {\n        versions: 1\n        versions: 3\n" in config_file.read_text()
    assert "version_labels" not in config_file.read_text()
    with ModelServerStandIn(sync.dest, "tfserving", config_file=config_file) as server:
        wait_for(lambda: server.served("resnet") == 3, what="resnet served at 3")
        assert sync.once(*args, "--server", server.url).returncode == 0
        text = config_file.read_text()
        assert 'version_labels {\n      key: "stable"\n      value: 1\n    }' in text
        wait_for(lambda: server.labelled("resnet", "stable") == 1, what="stable -> 1")
        assert server.labelled("resnet", "canary") == 3
        assert server.states("resnet") == {1: "AVAILABLE", 3: "AVAILABLE"}
        assert server.config_errors == []
        assert server.violations == []
