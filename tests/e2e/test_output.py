"""What an operator reads: plan rows, -v, sizes, the JSON start event, a quiet sidecar, hook
output and /metrics, through the real CLI against the emulator (issue 11)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Sync
from tests.support.models import big_files, sample_files
from tests.support.probes import get, metric, wait_for


def rows(stdout: str) -> list[tuple[str, str]]:
    """`plan`'s text rows as (action, version)."""
    return [
        (line.split()[0], line.split()[1]) for line in stdout.splitlines() if line.startswith("  ")
    ]


def test_plan_keep_lists_a_dropped_installed_version_once(sync: Sync) -> None:
    for v in (1, 2, 3):
        sync.bucket.put_zip(sync.key(f"m/{v}.zip"), sample_files(str(v)))
    assert sync.once().returncode == 0
    sync.bucket.put_zip(sync.key("n/1.zip"), sample_files("n1"))
    sync.bucket.put_zip(sync.key("n/2.zip"), sample_files("n2"))

    result = sync.run("plan", "--keep", "1")

    assert result.returncode == 0, result.stderr
    assert sorted(rows(result.stdout)) == [
        ("fetch", "n/2"),
        ("prune", "m/1"),
        ("prune", "m/2"),
        ("skip", "n/1"),  # in the bucket, never installed: not fetched
    ]
    doc = json.loads(sync.run("plan", "--keep", "1", "--log-format", "json").stdout)
    assert sorted((a["action"], a["version"]) for a in doc["actions"]) == [
        ("fetch", "n/2"),
        ("prune", "m/1"),
        ("prune", "m/2"),
        ("skip", "n/1"),
    ]


def test_plan_and_status_never_create_dest(sync: Sync) -> None:
    """Their --help says so: --dest is only read."""
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    for command in ("plan", "status"):
        result = sync.run(command)
        assert result.returncode == 0, result.stderr
        assert "m/1" in result.stdout or "1" in result.stdout
        assert not sync.dest.exists()


def test_verbose_adds_detail_to_once(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    assert sync.once().returncode == 0
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("c"))

    plain = sync.once("--dest", str(sync.dest.parent / "plain"))
    verbose = sync.once("-v")

    assert plain.returncode == verbose.returncode == 0
    assert " DEBUG " not in plain.stderr
    debug = [line for line in verbose.stderr.splitlines() if " DEBUG " in line]
    assert any("in sync: m/1, m/2" in line for line in debug), verbose.stderr
    assert any("fetch m/3" in line for line in debug), verbose.stderr
    assert any("reading gs://" in line and "m/3.zip" in line for line in debug), verbose.stderr
    assert any("1 list request(s), 1 object read(s)" in line for line in debug), verbose.stderr


def test_once_logs_human_sizes_and_json_keeps_bytes(sync: Sync) -> None:
    size = 3 * 1024 * 1024
    sync.bucket.put_zip(sync.key("m/1.zip"), big_files("a", size))

    text = sync.once()

    assert text.returncode == 0, text.stderr
    published = next(line for line in text.stderr.splitlines() if "published m/1" in line)
    assert published.endswith("(new, 3.0 MiB)"), published
    done = next(line for line in text.stderr.splitlines() if "pass success" in line)
    assert " bytes " not in done, done
    assert "MiB read in " in done, done

    json_run = sync.once("--log-format", "json", "--dest", str(sync.dest.parent / "json"))
    lines = [json.loads(x) for x in json_run.stderr.splitlines()]
    published_doc = next(x for x in lines if x["event"] == "published")
    assert isinstance(published_doc["bytes"], int)
    assert published_doc["bytes"] >= size
    done_doc = next(x for x in lines if x["event"] == "pass_done")
    assert isinstance(done_doc["bytes"], int)


def test_json_start_event_keeps_the_types_of_the_config(sync: Sync, tmp_path: Path) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    tfs = tmp_path / "models.config"

    result = sync.once(
        "--log-format", "json", "--keep", "2", "--allow-empty-source", "--tfs-config", str(tfs)
    )

    assert result.returncode == 0, result.stderr
    start = next(
        json.loads(x) for x in result.stderr.splitlines() if json.loads(x)["event"] == "start"
    )
    config = start["config"]
    assert config["keep"] == 2
    assert config["allow_empty_source"] is True
    assert config["anonymous"] is False
    assert config["settle"] == 0.0
    assert config["retry_deadline"] == 20.0
    assert config["max_delete"] is None
    assert config["max_version_size"] == 64 * 1024**3
    assert config["source"] == sync.source + "/"
    assert config["dest"] == str(sync.dest)
    assert config["tfs_config"] == str(tfs)


def test_the_start_event_hides_credentials_in_verify_and_server(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    result = sync.once(
        "--log-format", "json", "--verify", "true --token s3cret",
        "--server", "http://admin:hunter2@127.0.0.1:9/", "--server-timeout", "0.5",
    )  # fmt: skip
    start = next(
        json.loads(x) for x in result.stderr.splitlines() if json.loads(x)["event"] == "start"
    )
    assert start["config"]["verify"] == "true --token <redacted>"
    assert start["config"]["server"] == "http://<redacted>@127.0.0.1:9/"
    assert "s3cret" not in result.stderr
    assert "hunter2" not in result.stderr


def test_a_noop_pass_in_run_is_quiet_at_info(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar() as (proc, port):
        wait_for(lambda: metric(port, 'gcs_model_sync_passes_total{outcome="noop"}') >= 6)
    assert proc.stderr is not None
    err = proc.stderr.read()
    passes = [line for line in err.splitlines() if " pass " in line]
    assert len(passes) == 1, err  # the first pass only: it installed m/1
    assert "pass success" in passes[0]


def test_run_at_v_logs_every_noop_pass_at_debug(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar("-v", "--log-format", "json") as (proc, port):
        wait_for(lambda: metric(port, 'gcs_model_sync_passes_total{outcome="noop"}') >= 4)
    assert proc.stderr is not None
    done = [json.loads(x) for x in proc.stderr.read().splitlines() if '"pass_done"' in x]
    noop = [d for d in done if d["outcome"] == "noop"]
    assert len(noop) >= 4
    assert all(d["level"] == "debug" for d in noop[1:])


def test_a_successful_hook_output_shows_at_v(sync: Sync, tmp_path: Path) -> None:
    script = tmp_path / "hook.py"
    script.write_text(
        "import sys\nprint('reloaded 1 model')\nprint('warn: slow', file=sys.stderr)\n"
    )
    hook = f"{sys.executable} {script}"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    plain = sync.once("--on-change", hook)
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    verbose = sync.once("-v", "--on-change", hook)

    assert plain.returncode == verbose.returncode == 0
    assert "reloaded 1 model" not in plain.stderr
    assert "reloaded 1 model" in verbose.stderr, verbose.stderr
    assert "warn: slow" in verbose.stderr


def test_metrics_carry_no_created_series(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with sync.sidecar() as (_proc, port):
        wait_for(lambda: metric(port, "gcs_model_sync_versions_published_total") == 1)
        time.sleep(0.1)
        status, text = get(port, "/metrics")
    assert status == 200
    assert "gcs_model_sync_passes_total" in text
    samples = [line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"]
    assert [s for s in samples if s.endswith("_created")] == []
