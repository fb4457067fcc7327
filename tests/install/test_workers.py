"""workers.py's own decisions, in-process without a bucket: how a staging outcome becomes a
failure of its version, and what a refused publish leaves behind."""

from __future__ import annotations

import concurrent.futures as cf
from pathlib import Path

import pytest

from gcs_model_sync import ledger
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import InsufficientSpace, SyncError, VersionRejected
from gcs_model_sync.failures import FailureKind
from gcs_model_sync.install import fetch, publish, workers
from gcs_model_sync.layout import RemoteObject, fingerprint, group
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import State
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan.actions import Install
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken


def install_of(key: str) -> Install:
    [((model, version, form), es)] = group([RemoteObject(key, 1, 9)], "").items()
    return Install(RemoteVersion(model, version, form, tuple(es), fingerprint(form, es)), "new")


def a_pass(tmp_path: Path) -> Pass:
    paths = Paths(tmp_path / "models")
    paths.ensure()
    config = Config(source=Source.parse("gs://bucket/models"), dest=paths.dest)
    run = Pass(config, StopToken(), paths, None, Report())  # type: ignore[arg-type]  # no reads
    run.keep(State())
    return run


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (SyncError("gs://b/m/1.zip: retries exhausted"), FailureKind.REMOTE),
        (VersionRejected("gs://b/m/1.zip: not a zip file"), FailureKind.CONTENT),
        (InsufficientSpace("gs://b/m/1.zip: no space left"), FailureKind.SPACE),
        (OSError(30, "Read-only file system"), FailureKind.LOCAL),
        (KeyError("a bug"), FailureKind.INTERNAL),
    ],
)
def test_a_failed_staging_is_a_failure_of_its_version_of_its_kind(
    error: BaseException, kind: FailureKind
) -> None:
    i, report = install_of("m/1.zip"), Report()
    fut: cf.Future[fetch.Staged] = cf.Future()
    fut.set_exception(error)
    assert workers._collected(i, fut, report) is None
    [failure] = report.failures
    assert (failure.kind, failure.model, failure.version) == (kind, "m", "m/1")


def test_a_publish_the_disk_refuses_is_a_local_failure_and_its_staging_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = a_pass(tmp_path)
    i = install_of("m/1.zip")
    workdir = run.paths.staging / "w"
    (workdir / "content").mkdir(parents=True)

    def refuse(content: Path, target: Path, trash: Path) -> None:
        raise OSError(28, "No space left on device", str(target))

    monkeypatch.setattr(publish, "publish", refuse)
    discarded: list[Path] = []
    staged = fetch.Staged(i.version, workdir, workdir / "content", 9)
    workers._publish_one(run, i, staged, discarded.append, "new")
    assert discarded == [workdir]
    assert run.report.published == []
    assert "m/1" not in run.managed
    [failure] = run.report.failures
    assert failure.kind is FailureKind.LOCAL
    assert "cannot publish: No space left on device" in failure.message


def test_a_published_version_is_owned_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 3600.0)
    run = a_pass(tmp_path)
    i = install_of("m/1.zip")
    workdir = run.paths.staging / "w"
    (workdir / "content").mkdir(parents=True)
    (workdir / "content" / "saved_model.pb").write_bytes(b"pb")
    staged = fetch.Staged(i.version, workdir, workdir / "content", 2)
    workers._publish_one(run, i, staged, lambda _w: None, "new")
    assert (run.paths.dest / "m" / "1" / "saved_model.pb").read_bytes() == b"pb"
    assert run.report.published == ["m/1"]
    assert run.managed["m/1"].fingerprint == i.version.fingerprint
    assert run.ledger.dirty  # saved with the next save, after its folder is synced
    assert run.ledger.renamed == {run.paths.dest / "m"}
