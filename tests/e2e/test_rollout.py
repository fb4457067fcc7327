"""`--server`: confirm each rollout with the model server, through the real CLI, against a
stand-in that speaks TF Serving's and KServe v2's documented protocols
(tests/support/modelserver.py: no real model server can be installed on these machines)."""

from __future__ import annotations

import time

from tests.e2e.conftest import Sync
from tests.support.emulator import free_port
from tests.support.models import sample_files
from tests.support.modelserver import ModelServerStandIn
from tests.support.probes import metric, wait_for


def test_a_superseded_version_is_pruned_only_once_the_server_serves_the_new_one(
    sync: Sync,
) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    sync.dest.mkdir(parents=True, exist_ok=True)
    with ModelServerStandIn(sync.dest, "tfserving", load_delay=1.0) as server:
        first = sync.once("--keep", "1", "--server", server.url)
        assert first.returncode == 0, first.stderr
        assert server.served("resnet") == 1
        b.put_zip(sync.key("resnet/2.zip"), sample_files("b"))

        second = sync.once("--keep", "1", "--server", server.url, "-v")
        assert second.returncode == 0, second.stderr
        assert server.served("resnet") == 2
        assert sync.versions("resnet") == ["2"]
        assert "serves resnet version 2" in second.stderr
        assert server.violations == []  # no folder it served vanished under it


def test_a_version_the_server_never_serves_keeps_the_one_it_serves(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    sync.dest.mkdir(parents=True, exist_ok=True)
    with ModelServerStandIn(sync.dest, "kserve-v2") as server:
        assert sync.once("--keep", "1", "--server", server.url, "--server-kind", "kserve-v2")
        server.broken.add(("resnet", 2))
        b.put_zip(sync.key("resnet/2.zip"), sample_files("b"))
        args = ("--keep", "1", "--server", server.url, "--server-kind", "kserve-v2")

        result = sync.once(*args, "--server-timeout", "1.5")
        assert result.returncode == 1, result.stderr
        assert "resnet still serves version 1, not 2, after --server-timeout 1.5s" in result.stderr
        assert sync.versions("resnet") == ["1", "2"]  # the folder it reads stays

        plan = sync.run("plan", *args)
        assert "hold" in plan.stdout
        assert "the server serves version 1, none newer" in plan.stdout
        again = sync.once(*args, "--server-timeout", "1.5")
        assert again.returncode == 0, again.stderr  # nothing new to confirm: not a failure
        assert sync.versions("resnet") == ["1", "2"]
        assert "not deleting resnet/1 yet" in again.stderr
        assert server.violations == []


def test_triton_in_explicit_mode_is_asked_to_load_after_its_config_is_in_place(
    sync: Sync,
) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put(sync.key("resnet/config.pbtxt"), b'name: "resnet"\nbackend: "onnxruntime"\n')
    sync.dest.mkdir(parents=True, exist_ok=True)
    with ModelServerStandIn(sync.dest, "triton-explicit", require_config=True) as server:
        result = sync.once(
            "--model-files", "--server", server.url, "--server-kind", "triton-explicit"
        )
        assert result.returncode == 0, result.stderr
        assert ("POST", "/v2/repository/models/resnet/load") in server.requests
        assert server.served("resnet") == 1
        loads = [r for r in server.requests if r[0] == "POST"]
        assert (
            sync.once(
                "--model-files", "--server", server.url, "--server-kind", "triton-explicit"
            ).returncode
            == 0
        )
        assert [r for r in server.requests if r[0] == "POST"] == loads  # nothing changed


def test_an_unreachable_server_fails_the_rollout_and_deletes_nothing(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    assert sync.once("--keep", "1").returncode == 0
    b.put_zip(sync.key("resnet/2.zip"), sample_files("b"))
    closed = f"http://127.0.0.1:{free_port()}"
    result = sync.once("--keep", "1", "--server", closed, "--server-timeout", "1")
    assert result.returncode == 1, result.stderr
    assert closed in result.stderr
    assert "Traceback" not in result.stderr
    assert sync.versions("resnet") == ["1", "2"]


def test_run_exposes_the_version_each_model_is_served_at(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put_zip(sync.key("bert/3.zip"), sample_files("b"))
    sync.dest.mkdir(parents=True, exist_ok=True)
    with (
        ModelServerStandIn(sync.dest, "tfserving") as server,
        sync.sidecar("--server", server.url, "--keep", "1") as (_proc, port),
    ):
        served = 'gcs_model_sync_model_served_version{model="resnet"}'
        wait_for(lambda: metric(port, served) == 1, what="resnet served at 1")
        assert metric(port, 'gcs_model_sync_model_served_version{model="bert"}') == 3
        b.put_zip(sync.key("resnet/2.zip"), sample_files("c"))
        wait_for(lambda: metric(port, served) == 2, what="resnet served at 2")
        wait_for(lambda: sync.versions("resnet") == ["2"], what="resnet/1 pruned")
        assert server.violations == []


def test_a_restarted_triton_in_explicit_mode_is_asked_to_load_again(sync: Sync) -> None:
    """Explicit mode loads nothing by itself: a server that lost its models gets them back."""
    sync.bucket.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    sync.bucket.put(sync.key("resnet/config.pbtxt"), b'name: "resnet"\n')
    args = ("--model-files", "--server-kind", "triton-explicit")
    sync.dest.mkdir(parents=True, exist_ok=True)
    with ModelServerStandIn(sync.dest, "triton-explicit", require_config=True) as server:
        assert sync.once(*args, "--server", server.url).returncode == 0
    with ModelServerStandIn(sync.dest, "triton-explicit", require_config=True) as restarted:
        assert restarted.served("resnet") is None
        plan = sync.run("plan", "--model-files", "--server-kind", "triton-explicit",
                        "--server", restarted.url)  # fmt: skip
        assert plan.returncode == 0, plan.stderr
        assert [r for r in restarted.requests if r[0] == "POST"] == []  # plan only asks
        result = sync.once(*args, "--server", restarted.url)
        assert result.returncode == 0, result.stderr
        assert restarted.served("resnet") == 1


def test_one_server_timeout_bounds_the_whole_confirmation(sync: Sync) -> None:
    """Three models the server never serves cost one --server-timeout, not three."""
    sync.dest.mkdir(parents=True, exist_ok=True)
    with ModelServerStandIn(sync.dest, "tfserving") as server:
        for model in ("a", "b", "c"):
            sync.bucket.put_zip(sync.key(f"{model}/1.zip"), sample_files(model))
            server.broken.add((model, 1))
        started = time.monotonic()
        result = sync.once("--server", server.url, "--server-timeout", "3")
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("still serves no version, not 1") == 3
    assert elapsed < 8  # three timeouts one after the other take 9 s and more


def test_a_model_whose_files_changed_is_still_asked_what_it_serves(sync: Sync) -> None:
    """TF Serving finds a new config itself: the server is asked, and the prune it allows
    happens in the same pass."""
    b = sync.bucket
    for n in (1, 2):
        b.put_zip(sync.key(f"resnet/{n}.zip"), sample_files(str(n)))
    sync.dest.mkdir(parents=True, exist_ok=True)
    with ModelServerStandIn(sync.dest, "tfserving") as server:
        assert sync.once("--model-files", "--server", server.url).returncode == 0
        b.put(sync.key("resnet/labels.txt"), b"cat\n")
        result = sync.once("--model-files", "--keep", "1", "--server", server.url)
        assert result.returncode == 0, result.stderr
        assert (sync.dest / "resnet" / "labels.txt").read_bytes() == b"cat\n"
        assert sync.versions("resnet") == ["2"]
        assert server.violations == []


def test_a_server_url_that_cannot_be_asked_is_a_usage_error_before_any_pass(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    for command in ("once", "plan", "status"):
        result = sync.run(command, "--server", "localhost:8501")
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            "gcs-model-sync: error: --server localhost:8501: not an http(s)://host[:port][/prefix] "
            "URL"
        ]
    assert sync.versions("resnet") == []
