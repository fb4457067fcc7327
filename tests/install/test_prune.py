"""prune.py carries out the prunes deletions.decide() allows: what it deletes, and the one
line it says for each version it keeps. In-process on a temporary DEST, no bucket."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.failures import Failure, FailureKind
from gcs_model_sync.install import prune, publish
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import Managed, State
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan import deletions
from gcs_model_sync.plan.actions import Prune
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken


def a_pass(tmp_path: Path, *versions: str) -> Pass:
    paths = Paths(tmp_path / "models")
    paths.ensure()
    config = Config(source=Source.parse("gs://bucket/models"), dest=paths.dest)
    run = Pass(config, StopToken(), paths, None, Report())  # type: ignore[arg-type]  # no reads
    state = State()
    for vid in versions:
        model, _, number = vid.rpartition("/")
        (paths.dest / vid).mkdir(parents=True)
        state.versions[vid] = Managed(model, number, f"zip:{vid}")
    run.keep(state)
    return run


def prune_of(run: Pass, vid: str) -> Prune:
    return Prune(run.managed[vid], "removed from the bucket")


def test_a_pruned_version_goes_to_the_trash_and_is_disowned(tmp_path: Path) -> None:
    run = a_pass(tmp_path, "m/1", "m/2")
    prune.prune(run, deletions.decide(Plan(prunes=(prune_of(run, "m/1"),)), []))
    assert not (run.paths.dest / "m" / "1").exists()
    assert (run.paths.dest / "m" / "2").is_dir()
    assert run.report.pruned == ["m/1"]
    assert set(run.managed) == {"m/2"}


def test_a_retire_the_disk_refuses_keeps_the_version_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = a_pass(tmp_path, "m/1")

    def refuse(target: Path, trash: Path) -> None:
        raise OSError(30, "Read-only file system", str(target))

    monkeypatch.setattr(publish, "retire", refuse)
    assert prune.retire(run, prune_of(run, "m/1")) is False
    assert run.report.pruned == []
    assert "m/1" in run.managed
    [failure] = run.report.failures
    assert failure.kind is FailureKind.LOCAL
    assert (
        failure.message
        == "m/1: cannot prune: Read-only file system (" + str(run.paths.dest / "m" / "1") + ")"
    )


def test_a_guard_deletes_nothing_and_says_why(tmp_path: Path) -> None:
    run = a_pass(tmp_path, "m/1")
    guard = "1 deletions planned, more than --max-delete 0"
    prune.prune(run, deletions.decide(Plan(prunes=(prune_of(run, "m/1"),), guard=guard), []))
    assert (run.paths.dest / "m" / "1").is_dir()
    assert run.report.guard == guard


def test_each_kept_version_is_said_in_the_words_plan_uses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The log's reason and `plan`'s row come from the same decision."""
    run = a_pass(tmp_path, "a/1", "b/1", "b/2")
    run.report.failures.append(Failure("a", "a/3", "not a zip file", FailureKind.CONTENT))
    held, gated = prune_of(run, "a/1"), prune_of(run, "b/1")
    plan = Plan(prunes=(held, gated), in_sync=("b/2",))
    with caplog.at_level(logging.INFO, "gcs_model_sync"):
        decision = deletions.decide(plan, run.report.failures, {"b": 1})
        prune.prune(run, decision)
    assert decision.why == {
        held: deletions.HELD,
        gated: "the server serves version 1, none newer",
    }
    assert f"not deleting a/1: {deletions.HELD}" in caplog.text
    assert "not deleting b/1 yet: the server serves version 1, none newer" in caplog.text
    assert run.report.pruned == []
