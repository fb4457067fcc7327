"""What an operator reads: plan rows, -v, sizes, the JSON start event, a quiet sidecar, hook
output and /metrics, through the real CLI against the emulator (issue 11)."""

from __future__ import annotations

import json
import re
import signal
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
    assert published.endswith("(new, download 3.0 MiB, on disk 3.0 MiB)"), published
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


def test_status_says_whether_a_pending_version_is_new_failed_or_resuming(
    proxied: Sync,
) -> None:
    """A version that failed shows why; a cut-short download shows what it resumes with; a
    version never tried is new. None of them is "missing locally"."""
    from tests.e2e.test_big_objects import big_version, interrupt

    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxied.bucket.put(proxied.key("m/8.zip"), b"PK\x03\x04 this is not really a zip")
    assert proxied.once().returncode == 1
    proxied.bucket.put_folder(proxied.key("big/1"), big_version("big"))
    assert interrupt(proxied, signal.SIGTERM, 2 * 1024 * 1024).returncode == 143
    proxied.bucket.put_zip(proxied.key("m/9.zip"), sample_files("c"))

    text = proxied.run("status")
    doc = json.loads(proxied.run("status", "--output", "json").stdout)

    assert text.returncode == 0, text.stderr
    assert "missing locally" not in text.stdout
    line = {x.split()[0]: x for x in text.stdout.splitlines()[1:]}
    assert "failed 8 (" in line["m"], text.stdout
    assert "m/8.zip" in line["m"], text.stdout
    assert "new 9" in line["m"], text.stdout
    assert "resuming 1 (" in line["big"], text.stdout
    assert "on disk" in line["big"], text.stdout
    models = {m["model"]: m for m in doc["models"]}
    pending = {p["version"]: p for p in models["m"]["pending"]}
    assert pending["8"]["state"] == "failed"
    assert "m/8.zip" in pending["8"]["reason"]
    assert pending["9"]["state"] == "new"
    (big,) = models["big"]["pending"]
    assert big["state"] == "resuming"
    assert big["resume_bytes"] >= 2 * 1024 * 1024


def test_a_resumed_download_is_published_as_resumed(proxied: Sync) -> None:
    from tests.e2e.test_big_objects import SLICED, big_version, interrupt

    proxied.bucket.put_folder(proxied.key("big/1"), big_version("big"))
    assert interrupt(proxied, signal.SIGTERM, 2 * 1024 * 1024).returncode == 143

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    published = next(x for x in result.stderr.splitlines() if "published big/1" in x)
    assert "(resumed, " in published, published
    assert "missing locally" not in result.stderr


def test_status_reports_the_guard_and_exits_3_as_plan_does(sync: Sync) -> None:
    for v in ("1", "2", "3"):
        sync.bucket.put_zip(sync.key(f"m/{v}.zip"), sample_files(v))
        sync.bucket.put_zip(sync.key(f"n/{v}.zip"), sample_files(v))
    assert sync.once().returncode == 0
    typo = ("--source", f"gs://{sync.bucket.name}/modles")
    sync.bucket.delete(sync.key("m/1.zip"))
    sync.bucket.delete(sync.key("m/2.zip"))
    cases = [typo, ("--max-delete", "1"), ("--max-delete", "2")]

    for extra in cases:
        planned = sync.run("plan", *extra)
        status = sync.run("status", *extra)
        planned_doc = json.loads(sync.run("plan", "--output", "json", *extra).stdout)
        status_doc = json.loads(sync.run("status", "--output", "json", *extra).stdout)

        assert status.returncode == planned.returncode, (extra, status.stdout, planned.stdout)
        assert status_doc["guard"] == planned_doc["guard"], extra
        guards = [x.strip() for x in planned.stdout.splitlines() if "guard:" in x]
        assert guards == [x.strip() for x in status.stdout.splitlines() if "guard:" in x], extra
        if planned.returncode == 3:
            assert guards, planned.stdout
            assert not re.search(r"(: |, )prune ", status.stdout), status.stdout  # refused
            assert "refused" in status.stdout, status.stdout
    assert sync.run("status", *typo).returncode == 3
    assert sync.run("status", "--max-delete", "2").returncode == 0


def test_plan_and_status_speak_json_with_output_json(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    sync.bucket.delete(sync.key("m/1.zip"))
    from tests.support.cli import run_cli

    for command in ("plan", "status"):
        flag = sync.run(command, "--output", "json")
        env = run_cli(sync.args(command), sync.endpoint, env={"GCS_MODEL_SYNC_OUTPUT": "json"})
        old = sync.run(command, "--log-format", "json")
        assert flag.returncode == env.returncode == old.returncode == 0, flag.stderr
        assert json.loads(flag.stdout) == json.loads(env.stdout) == json.loads(old.stdout)
        assert flag.stderr == ""  # logs stay text, and there are none
    plan_rows = {
        a["version"]: a for a in json.loads(sync.run("plan", "--output", "json").stdout)["actions"]
    }
    fetch = plan_rows["m/2"]
    assert (fetch["action"], fetch["model"], fetch["number"], fetch["state"]) == (
        "fetch", "m", "2", "new",
    )  # fmt: skip
    assert isinstance(fetch["download_bytes"], int)
    prune = plan_rows["m/1"]
    assert (prune["action"], prune["model"], prune["number"]) == ("prune", "m", "1")
    assert isinstance(prune["disk_bytes"], int)
    assert prune["disk_bytes"] > 0
    (model,) = json.loads(sync.run("status", "--output", "json").stdout)["models"]
    assert {(p["action"], p["version"]) for p in model["pending"]} == {
        ("fetch", "2"),
        ("prune", "1"),
    }
    assert all(isinstance(p, dict) for p in model["pending"])
    bad = sync.run("status", "--output", "yaml")
    assert bad.returncode == 2
    assert "--output must be text or json" in bad.stderr


def test_published_line_and_plan_rows_label_download_and_on_disk_sizes(sync: Sync) -> None:
    size = 3 * 1024 * 1024
    sync.bucket.put_zip(sync.key("m/1.zip"), big_files("a", size))
    planned = sync.run("plan")
    fetch = next(x for x in planned.stdout.splitlines() if x.split()[:2] == ["fetch", "m/1"])
    assert "download 3.0 MiB" in fetch, fetch

    result = sync.once()

    assert result.returncode == 0, result.stderr
    published = next(x for x in result.stderr.splitlines() if "published m/1" in x)
    assert "(new, download 3.0 MiB, on disk 3.0 MiB)" in published, published
    sync.bucket.delete(sync.key("m/1.zip"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    prune = next(
        x for x in sync.run("plan").stdout.splitlines() if x.split()[:2] == ["prune", "m/1"]
    )
    assert "on disk 3.0 MiB" in prune, prune
