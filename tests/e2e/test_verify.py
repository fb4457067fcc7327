"""`--verify CMD`: a check of each staged version before it is published, through the real CLI."""

from __future__ import annotations

import itertools
import json
import shlex
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Sync
from tests.support.models import sample_files
from tests.support.probes import metric, wait_for
from tests.support.strays import pids_with_argument, stopped_afterwards

# A check as a user writes one: refuses a version holding a file named BROKEN, with a last
# line of error output that says why; records each run (its cwd and environment).
CHECK = """
import json, os, sys
with open(sys.argv[1], "a") as log:
    log.write(json.dumps({
        "cwd": os.getcwd(),
        "files": sorted(
            os.path.relpath(os.path.join(d, f)) for d, _, fs in os.walk(".") for f in fs
        ),
        "env": {k: v for k, v in os.environ.items() if k.startswith("GCS_MODEL_SYNC_")},
    }) + "\\n")
if os.path.exists("BROKEN"):
    print("loading the model", file=sys.stderr)
    print("model is broken: BROKEN found", file=sys.stderr)
    sys.exit(3)
"""


def check(tmp_path: Path) -> tuple[str, Path]:
    """The --verify command, and the file where each of its runs is recorded."""
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    runs = tmp_path / "runs.jsonl"
    return shlex.join([sys.executable, str(script), str(runs)]), runs


def runs_of(runs: Path) -> list[dict[str, object]]:
    if not runs.exists():
        return []
    return [json.loads(line) for line in runs.read_text().splitlines()]


def broken() -> dict[str, bytes]:
    return {**sample_files("b"), "BROKEN": b"yes"}


def test_verify_refusing_a_version_keeps_the_old_one_and_is_not_rerun_until_it_changes(
    sync: Sync, tmp_path: Path
) -> None:
    command, runs = check(tmp_path)
    b = sync.bucket
    b.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once("--verify", command, "--keep", "1").returncode == 0
    b.put_zip(sync.key("m/2.zip"), broken())

    refused = sync.once("--verify", command, "--keep", "1")
    assert refused.returncode == 1, refused.stderr
    [line] = [x for x in refused.stderr.splitlines() if "--verify refused" in x]
    assert "m/2.zip: --verify refused m/2: exited 3: model is broken: BROKEN found" in line
    assert sync.versions("m") == ["1"]
    assert sync.version("m/1") == sample_files("a")
    assert len(runs_of(runs)) == 2

    again = sync.once("--verify", command, "--keep", "1", "--log-format", "json")
    assert again.returncode == 1, again.stderr
    assert len(runs_of(runs)) == 2  # not checked again
    done = [json.loads(x) for x in again.stderr.splitlines() if '"pass_done"' in x]
    assert done[0]["object_reads"] == 0  # nor downloaded again
    assert "refused earlier" in again.stderr
    assert sync.versions("m") == ["1"]

    b.put_zip(sync.key("m/2.zip"), sample_files("c"))  # a new upload: a new generation
    fixed = sync.once("--verify", command, "--keep", "1")
    assert fixed.returncode == 0, fixed.stderr
    assert sync.versions("m") == ["2"]
    assert sync.version("m/2") == sample_files("c")
    assert len(runs_of(runs)) == 3


def test_verify_runs_in_the_staged_version_with_its_names_in_the_environment(
    sync: Sync, tmp_path: Path
) -> None:
    command, runs = check(tmp_path)
    sync.bucket.put_zip(sync.key("team/bert/0007.zip"), sample_files("a"))
    result = sync.once("--verify", command)
    assert result.returncode == 0, result.stderr
    [run] = runs_of(runs)
    env = run["env"]
    assert isinstance(env, dict)
    assert env["GCS_MODEL_SYNC_MODEL"] == "team/bert"
    assert env["GCS_MODEL_SYNC_VERSION"] == "0007"
    assert env["GCS_MODEL_SYNC_VERSION_DIR"] == run["cwd"]
    assert str(run["cwd"]).startswith(str(sync.dest / ".gcs-model-sync" / "staging"))
    assert run["files"] == sorted(sample_files("a"))
    assert sync.version("team/bert/0007") == sample_files("a")


def test_a_fixed_verify_command_checks_a_refused_version_again(sync: Sync, tmp_path: Path) -> None:
    command, runs = check(tmp_path)
    sync.bucket.put_zip(sync.key("m/1.zip"), broken())
    assert sync.once("--verify", command).returncode == 1
    lenient = f"{command} --any-argument"  # another command: its own judgement
    assert sync.once("--verify", lenient).returncode == 1
    assert len(runs_of(runs)) == 2
    assert sync.once().returncode == 0  # no check at all: installed as before
    assert sync.versions("m") == ["1"]


def test_a_verify_that_times_out_refuses_the_version_and_stops_its_children(
    sync: Sync, tmp_path: Path
) -> None:
    marker = tmp_path / "child-still-running"
    script = tmp_path / "slow.sh"
    script.write_text(f"(sleep 3; touch {marker}) &\nsleep 30\n")
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    started = time.monotonic()
    result = sync.once("--verify", f"sh {script}", "--hook-timeout", "1")
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 20
    assert "--verify refused m/1: timed out after 1s" in result.stderr
    assert sync.versions("m") == []
    time.sleep(3.5)
    assert not marker.exists()  # its process group was killed with it


def test_a_verify_whose_escaped_child_holds_its_output_is_still_bounded_by_hook_timeout(
    sync: Sync,
) -> None:
    """A `setsid` grandchild leaves the process group but keeps the output pipes open: the
    wait for that output ends with --hook-timeout too, not when the grandchild does."""
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with stopped_afterwards("40.123") as mark:
        started = time.monotonic()
        result = sync.once(
            "--verify", f"sh -c 'setsid sleep {mark} & sleep 30'", "--hook-timeout", "2"
        )
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"took {elapsed:.1f}s: the wait outlived --hook-timeout"
        assert pids_with_argument(mark), "the escaped child should have outlived the check"
    assert result.returncode == 1, result.stderr
    assert "--verify refused m/1: timed out after 2s" in result.stderr
    assert sync.versions("m") == []


def test_a_passing_verify_that_leaves_a_child_behind_passes_and_publishes(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    with stopped_afterwards("40.124") as mark:
        started = time.monotonic()
        result = sync.once("--verify", f"sh -c 'setsid sleep {mark} & exit 0'")
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 10, f"took {elapsed:.1f}s: the check's own exit was not enough"
    assert "--verify passed m/1" in result.stderr
    assert sync.version("m/1") == sample_files("a")
    assert sync.once().returncode == 0  # not remembered as refused


def test_a_verify_command_that_cannot_run_is_a_usage_error(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    result = sync.once("--verify", "/nonexistent/check --strict")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gcs-model-sync: error: --verify: '/nonexistent/check' is not an executable program "
        "(not on PATH?)"
    ]
    assert sync.versions("m") == []


def test_run_counts_verify_refusals_once_per_check(sync: Sync, tmp_path: Path) -> None:
    command, runs = check(tmp_path)
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/2.zip"), broken())
    with sync.sidecar("--verify", command) as (_proc, port):
        errors = 'gcs_model_sync_passes_total{outcome="error"}'
        wait_for(lambda: metric(port, errors) >= 4, what="4 failed passes")
        refused = metric(port, 'gcs_model_sync_verify_runs_total{outcome="failure"}')
        passed = metric(port, 'gcs_model_sync_verify_runs_total{outcome="success"}')
    assert (refused, passed) == (1, 1)
    assert len(runs_of(runs)) == 2
    assert sync.versions("m") == ["1"]


def test_checks_run_one_at_a_time(sync: Sync, tmp_path: Path) -> None:
    """A check that loads a model holds it in memory: sixteen at once would not fit."""
    spans = tmp_path / "spans"
    code = (
        "import sys, time; t = time.time(); time.sleep(0.3); "
        f"open({str(spans)!r}, 'a').write(f'{{t}} {{time.time()}}\\n')"
    )
    for n in range(1, 5):
        sync.bucket.put_zip(sync.key(f"m{n}/1.zip"), sample_files(str(n)))
    result = sync.once("--verify", shlex.join([sys.executable, "-c", code]))
    assert result.returncode == 0, result.stderr
    intervals = sorted(tuple(map(float, line.split())) for line in spans.read_text().splitlines())
    assert len(intervals) == 4
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start >= end
