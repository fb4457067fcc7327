"""`run`: the sidecar loop, its probes, metrics and hooks, driven as Kubernetes would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Sync
from tests.support.faultproxy import Fault, FaultProxy, Rule
from tests.support.models import big_files, sample_files
from tests.support.probes import get, metric, needs_ipv6, wait_for


def test_new_version_appears_and_removed_one_is_pruned_while_running(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar() as (_proc, port):
        wait_for(lambda: sync.versions("m") == ["1"], what="first version")
        sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
        wait_for(lambda: sync.versions("m") == ["1", "2"], what="new version")
        sync.bucket.delete(sync.key("m/1.zip"))
        wait_for(lambda: sync.versions("m") == ["2"], what="prune")
        wait_for(lambda: metric(port, "gcs_model_sync_versions_pruned_total") == 1)
        assert metric(port, "gcs_model_sync_versions_published_total") == 2
        assert metric(port, 'gcs_model_sync_model_newest_version{model="m"}') == 2
    assert sync.version("m/2") == sample_files("b")


def ready_on(port: int, host: str) -> Callable[[], bool]:
    return lambda: get(port, "/readyz", host=host)[0] == 200


@needs_ipv6
@pytest.mark.parametrize(
    ("http_host", "probed"),
    [("::", ["127.0.0.1", "[::1]"]), ("::1", ["[::1]"]), ("[::1]", ["[::1]"])],
)
def test_probes_answer_on_ipv6_and_dual_stack_for_an_ipv6_only_cluster(
    sync: Sync, http_host: str, probed: list[str]
) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar("--http-host", http_host) as (proc, port):
        for host in probed:
            wait_for(ready_on(port, host), what=f"/readyz on {host}")
            assert get(port, "/healthz", host=host) == (200, "ok\n")
            assert get(port, "/metrics", host=host)[0] == 200
        assert proc.poll() is None


def test_readyz_is_503_until_a_listing_completes(sync: Sync) -> None:
    with sync.sidecar("--source", "gs://bucket-that-does-not-exist-yet/models") as (proc, port):
        wait_for(lambda: get(port, "/healthz")[0] == 200, what="http up")
        wait_for(lambda: metric(port, 'gcs_model_sync_passes_total{outcome="error"}') >= 3)
        assert get(port, "/readyz") == (503, "no pass has listed the bucket yet\n")
        assert get(port, "/healthz")[0] == 200  # alive, just not ready
        assert proc.poll() is None  # the loop keeps running through failures
        assert metric(port, "gcs_model_sync_consecutive_failures") >= 3
        assert metric(port, "gcs_model_sync_last_listing_timestamp_seconds") == 0


def stays_ready(port: int, until: Callable[[], object], what: str) -> None:
    """Wait for `until`, checking at every poll that /readyz never leaves 200."""
    seen: list[int] = []

    def check() -> object:
        seen.append(get(port, "/readyz")[0])
        assert seen[-1] == 200, f"/readyz answered {seen[-1]} while waiting for {what}"
        return until()

    wait_for(check, what=what)
    assert len(seen) > 1


def test_one_bad_upload_never_takes_a_ready_replica_out(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar() as (proc, port):
        wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready")
        sync.bucket.put(sync.key("m/2.zip"), b"PK\x03\x04 this is not really a zip")
        stays_ready(
            port,
            lambda: metric(port, "gcs_model_sync_consecutive_failures") >= 3,
            what="three failed passes",
        )
        assert metric(port, "gcs_model_sync_objects_rejected_total") >= 3
        assert metric(port, "gcs_model_sync_versions_on_disk") == 1
        assert get(port, "/healthz")[0] == 200
        assert proc.poll() is None
    assert sync.versions("m") == ["1"]


def test_bucket_outage_keeps_ready_while_versions_are_on_disk(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    with proxied.sidecar("--retry-attempts", "1") as (_proc, port):
        wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready")
        proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=503))
        wait_for(lambda: metric(port, "gcs_model_sync_consecutive_failures") >= 1)
        listed = metric(port, "gcs_model_sync_last_listing_timestamp_seconds")
        last_success = metric(port, "gcs_model_sync_last_success_timestamp_seconds")
        stays_ready(
            port,
            lambda: metric(port, "gcs_model_sync_consecutive_failures") >= 4,
            what="an outage of several passes",
        )
        # staleness is for alerting: the last good listing and success stop moving
        assert 0 < listed == metric(port, "gcs_model_sync_last_listing_timestamp_seconds")
        assert last_success == metric(port, "gcs_model_sync_last_success_timestamp_seconds")
        assert get(port, "/readyz")[1].startswith("ok: 1 version(s) on disk")
        assert get(port, "/healthz")[0] == 200
        proxy.clear_rules()
        stays_ready(
            port,
            lambda: metric(port, "gcs_model_sync_consecutive_failures") == 0,
            what="the bucket back",
        )
        wait_for(lambda: metric(port, "gcs_model_sync_last_listing_timestamp_seconds") > listed)
    assert proxied.versions("m") == ["1"]


def test_on_change_hook_gets_what_changed(sync: Sync, tmp_path: Path) -> None:
    out = tmp_path / "hook.jsonl"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        f"open({str(out)!r}, 'a').write(json.dumps({{k: v for k, v in os.environ.items()"
        " if k.startswith('GCS_MODEL_SYNC_')}) + '\\n')\n"
    )
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar("--on-change", f"{sys.executable} {script}") as (_proc, port):
        wait_for(lambda: out.exists(), what="first hook run")
        sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
        sync.bucket.delete(sync.key("m/1.zip"))

        def later() -> dict[str, str]:
            runs = [json.loads(x) for x in out.read_text().splitlines()[1:]]
            joined: dict[str, str] = {}
            for r in runs:
                for k, v in r.items():
                    joined[k] = ",".join(filter(None, [joined.get(k, ""), v]))
            return joined

        wait_for(lambda: "m/1" in later().get("GCS_MODEL_SYNC_PRUNED", ""), what="prune hook")
        # the counter moves when the hook has returned, a moment after it wrote its file
        wait_for(lambda: metric(port, 'gcs_model_sync_hook_runs_total{outcome="success"}') >= 2)
    first = json.loads(out.read_text().splitlines()[0])
    assert first["GCS_MODEL_SYNC_PUBLISHED"] == "m/1"
    assert first["GCS_MODEL_SYNC_PRUNED"] == ""
    assert first["GCS_MODEL_SYNC_DEST"] == str(sync.dest)
    assert "m/2" in later()["GCS_MODEL_SYNC_PUBLISHED"].split(",")
    assert "m/1" not in later()["GCS_MODEL_SYNC_PUBLISHED"].split(",")


def test_failing_hook_is_counted_and_the_loop_goes_on(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar("--on-change", "false") as (proc, port):
        wait_for(
            lambda: metric(port, 'gcs_model_sync_hook_runs_total{outcome="failure"}') >= 2,
            what="hook retried after the next pass",
        )
        sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
        wait_for(lambda: sync.versions("m") == ["1", "2"])
        assert proc.poll() is None


def test_sigterm_during_large_download_exits_zero_quickly(proxied: Sync, proxy: FaultProxy) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), big_files("a"))
    proxy.add_rule(Rule(kind="download", fault=Fault.STALL, at=100_000, delay=60))
    with proxied.sidecar() as (proc, _port):
        wait_for(lambda: proxy.counts["download"] > 0, what="download start")
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        proc.wait(timeout=15)
        assert time.monotonic() - started < 5
        assert proc.returncode == 0
    assert proxied.versions("m") == []


def test_max_failures_exits_nonzero(sync: Sync) -> None:
    proc = sync.start(
        "run",
        "--interval",
        "0.1",
        "--max-failures",
        "3",
        "--source",
        "gs://no-such-bucket-for-max-failures/x",
    )
    proc.wait(timeout=60)
    assert proc.returncode == 1
    assert proc.stderr is not None
    assert "3 consecutive failed passes" in proc.stderr.read()


def test_json_logs_are_one_object_per_line_with_config_redacted(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    # A program that is surely there (an --on-change that cannot start stops `once` at start),
    # given a curl-like command line to redact.
    hook = f"{sys.executable} -c pass -H 'Authorization: Bearer s3cr3t' http://x/"
    result = sync.once("--log-format", "json", "--on-change", hook)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in result.stderr.splitlines()]
    assert all({"ts", "level", "event", "message"} <= set(x) for x in lines)
    start = next(x for x in lines if x["event"] == "start")
    assert start["version"]
    assert start["config"]["dest"] == str(sync.dest)
    assert "s3cr3t" not in json.dumps(lines)
    published = next(x for x in lines if x["event"] == "published")
    assert published["model"] == "m"
    assert published["version"] == "1"
    assert published["bytes"] > 0


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_hook_password_never_shows_on_the_start_line_nor_in_its_failure_line(
    sync: Sync, tmp_path: Path, fmt: str
) -> None:
    """A failing `curl -v -u admin:pw` prints what it sent; its ERROR line shows none of it."""
    password, basic = "pw-s3cr3t", "YWRtaW46cHctczNjcjN0"  # base64 of admin:pw-s3cr3t
    script = tmp_path / "curl.sh"  # fails as curl -v does, echoing what it was given
    script.write_text(
        'echo "curl $*" >&2\n'
        f'echo "> Authorization: Basic {basic}" >&2\n'
        'echo "curl: (22) The requested URL returned error: 503" >&2\n'
        "exit 22\n"
    )
    hook = f"sh {script} -v -u admin:{password} --user admin:{password} "
    hook += f"--user=admin:{password} https://admin:{password}@tfs.example/reload"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    result = sync.once("--log-format", fmt, "--on-change", hook)

    assert password not in result.stderr
    assert basic not in result.stderr
    assert result.returncode == 1, result.stderr
    [failed] = [line for line in result.stderr.splitlines() if "--on-change exited 22" in line]
    assert "-u <redacted> --user <redacted> --user=<redacted>" in failed
    assert "https://<redacted>@tfs.example/reload" in failed
    if fmt == "json":
        start = next(json.loads(x) for x in result.stderr.splitlines() if '"start"' in x)
        assert start["config"]["on_change"] == (
            f"sh {script} -v -u <redacted> --user <redacted> --user=<redacted> "
            "https://<redacted>@tfs.example/reload"
        )


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_progress_output_when_not_a_terminal(sync: Sync, fmt: str) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), big_files("a"))
    result = sync.once("--log-format", fmt)
    assert result.returncode == 0
    assert "\r" not in result.stderr


def test_progress_is_shown_on_a_terminal(proxied: Sync, proxy: FaultProxy) -> None:
    import os
    import pty

    from tests.support.cli import cli_env, command

    proxied.bucket.put_zip(proxied.key("m/1.zip"), big_files("a", 4 * 1024 * 1024))
    proxy.add_rule(Rule(kind="download", fault=Fault.STALL, at=1_000_000, delay=1.5))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        command(*proxied.args("once")),
        env=cli_env(proxied.endpoint),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    text = seen.decode(errors="replace")
    assert "\r\x1b[K  " in text  # the progress line, redrawn in place
    assert " / 4.0 MiB" in text
    assert "B/s" in text
    assert "\r\x1b[K  m/1  " in text  # the version in flight, first
    published = next(line for line in text.split("\r\n") if "published m/1" in line)
    assert published.startswith("\r\x1b[K"), "a log line must clear the progress line first"
    assert published.rsplit("\r\x1b[K", 1)[1][:4].isdigit()  # then the timestamp, alone


def test_run_says_at_info_that_it_recovered_after_failed_passes(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    with proxied.sidecar("--retry-attempts", "1") as (proc, port):
        wait_for(lambda: metric(port, 'gcs_model_sync_passes_total{outcome="success"}') == 1)
        proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=503))
        wait_for(lambda: metric(port, "gcs_model_sync_consecutive_failures") >= 2)
        proxy.clear_rules()
        wait_for(lambda: metric(port, "gcs_model_sync_consecutive_failures") == 0)
        failures = metric(port, 'gcs_model_sync_passes_total{outcome="error"}')
    assert proc.stderr is not None
    err = proc.stderr.read()
    recovered = [x for x in err.splitlines() if "recovered" in x]
    assert len(recovered) == 1, err
    assert " INFO " in recovered[0], recovered[0]
    assert f"after {failures:.0f} failed passes" in recovered[0], recovered[0]
