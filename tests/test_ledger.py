"""The ledger: each change recorded once (state, report, save scheduled), and every save
that records renames made after they are durable."""

from __future__ import annotations

import pytest

from gcs_model_sync import ledger
from gcs_model_sync.failures import FailureKind
from gcs_model_sync.layout import RemoteObject, fingerprint, group
from gcs_model_sync.ledger import Ledger
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import (
    PENDING,
    PENDING_FILE,
    LastFailure,
    Managed,
    ManagedFile,
    Refusal,
    State,
    load_state,
)
from gcs_model_sync.plan.actions import Install
from gcs_model_sync.plan.files_plan import FileChange
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.report import Report


def install_of(key: str, generation: int = 1) -> Install:
    [((model, version, form), es)] = group([RemoteObject(key, generation, 9)], "").items()
    return Install(RemoteVersion(model, version, form, tuple(es), fingerprint(form, es)), "new")


def test_a_failure_is_remembered_until_its_version_is_installed_or_changes(
    paths: Paths,
) -> None:
    bad, fine, gone = install_of("m/8.zip"), install_of("m/9.zip"), install_of("m/7.zip")
    state = State(failed={"m/7": LastFailure(gone.version.fingerprint, "old")})
    report = Report(published=["m/9"])
    keeper = Ledger(paths, state, "gs://b/", report)
    report.fail(FailureKind.CONTENT, "m", "m/8", "gs://b/m/8.zip: not a zip file")
    report.fail(FailureKind.LOCAL, "m", "m/9", "a failure of a version published after all")

    keeper.failed((bad.version, fine.version))

    assert state.failed == {
        "m/8": LastFailure(bad.version.fingerprint, "gs://b/m/8.zip: not a zip file")
    }
    assert keeper.dirty
    changed = install_of("m/8.zip", generation=2)
    Ledger(paths, state, "gs://b/", Report()).failed((changed.version,))
    assert state.failed == {}  # a new upload: whatever failed before says nothing of it


def test_a_refusal_stands_while_its_version_is_held_back_and_goes_once_published(
    paths: Paths,
) -> None:
    state = State(refused={"m/1": Refusal("f1", "check", "no"), "m/2": Refusal("f2", "c", "x")})
    report = Report()
    report.refusals["m/3"] = ("f3", "refused now")
    keeper = Ledger(paths, state, "s", report)
    keeper.refused(["m/1"], "check")
    assert state.refused == {
        "m/1": Refusal("f1", "check", "no"),
        "m/3": Refusal("f3", "check", "refused now"),
    }
    assert keeper.dirty
    report.published.append("m/1")
    keeper.refused(["m/1"], "check")
    assert "m/1" not in state.refused


def test_a_publish_and_a_retire_are_recorded_in_state_and_report_once(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 3600.0)  # no save during the test
    v = install_of("m/5.zip").version
    report = Report()
    keeper = Ledger(paths, State(), "s", report)
    keeper.published(v, 42, paths.dest / "m")
    m = keeper.state.versions["m/5"]
    assert (m.fingerprint, m.bytes, report.published) == (v.fingerprint, 42, ["m/5"])
    assert keeper.dirty
    assert keeper.renamed == {paths.dest / "m"}
    keeper.retired(m, paths.dest / "m")
    assert (keeper.state.versions, report.pruned) == ({}, ["m/5"])


def test_pending_entries_are_saved_before_any_publish_and_restored_after(paths: Paths) -> None:
    before = Managed("m", "1", "old-fingerprint")
    state = State(versions={"m/1": before})
    keeper = Ledger(paths, state, "s", Report())
    new, again = install_of("m/2.zip").version, install_of("m/1.zip").version
    previous = keeper.pending([new, again])
    on_disk = load_state(paths).versions
    assert {vid: m.fingerprint for vid, m in on_disk.items()} == {"m/1": PENDING, "m/2": PENDING}
    assert not keeper.dirty
    keeper.restore(previous)
    assert state.versions == {"m/1": before}
    assert keeper.dirty  # the pending entries saved on disk must not outlive the pass
    keeper.save()
    assert load_state(paths).versions == {"m/1": before}


def test_a_file_written_or_removed_is_recorded_and_an_unwritten_one_restored(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 3600.0)
    obj = RemoteObject("m/config.pbtxt", 7, 4)
    write = FileChange("m", "config.pbtxt", obj, "new")
    other = FileChange("m", "labels.txt", RemoteObject("m/labels.txt", 3, 1), "new")
    report = Report()
    keeper = Ledger(paths, State(), "s", report)
    previous = keeper.files_pending([write, other])
    assert load_state(paths).files["m/config.pbtxt"].generation == PENDING_FILE
    keeper.file_written(write, 4)
    keeper.files_restore(previous)
    assert keeper.state.files == {"m/config.pbtxt": ManagedFile("m", "config.pbtxt", 7, 4)}
    keeper.file_removed(FileChange("m", "config.pbtxt", None, "removed from the bucket"))
    assert (keeper.state.files, report.files_written, report.files_removed) == (
        {},
        ["m/config.pbtxt"],
        ["m/config.pbtxt"],
    )


def test_a_save_syncs_the_renamed_folders_first_and_only_when_something_changed(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(ledger, "sync_dirs", lambda dirs, dest: calls.append(set(dirs)))
    monkeypatch.setattr(ledger, "save_state", lambda *a: calls.append("save"))
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 3600.0)
    keeper = Ledger(paths, State(), "s", Report())
    keeper.save()
    assert calls == []  # nothing changed: no write
    keeper.published(install_of("a/1.zip").version, 1, paths.dest / "a")
    keeper.published(install_of("b/1.zip").version, 1, paths.dest / "b")
    assert calls == []  # within a second of the last save: not yet
    keeper.save()
    assert calls == [{paths.dest / "a", paths.dest / "b"}, "save"]
    keeper.forget(("a/1",), ())
    keeper.save()
    assert calls[2:] == ["save"]  # nothing renamed since: no sync


def test_a_change_saves_at_most_once_a_second(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves: list[int] = []
    monkeypatch.setattr(ledger, "sync_dirs", lambda dirs, dest: None)
    monkeypatch.setattr(ledger, "save_state", lambda *a: saves.append(1))
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 0.0)
    keeper = Ledger(paths, State(), "s", Report())
    keeper.published(install_of("a/1.zip").version, 1, paths.dest / "a")
    assert saves == [1]
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 3600.0)
    keeper.published(install_of("a/2.zip").version, 1, paths.dest / "a")
    assert saves == [1]
    assert keeper.dirty


def test_a_folder_version_records_the_size_and_crc_of_each_file_it_may_be_linked_from(
    paths: Paths,
) -> None:
    objects = [
        RemoteObject("m/3/a.bin", 1, 5, "AAAAAA=="),
        RemoteObject("m/3/z.gz", 1, 7, "BBBBBB==", encoding="gzip"),  # CRC of stored bytes
        RemoteObject("m/3/empty", 1, 0, "AAAAAA=="),
    ]
    [((model, version, form), es)] = group(objects, "").items()
    v = RemoteVersion(model, version, form, tuple(es), fingerprint(form, es))
    archive = install_of("m/4.zip").version
    keeper = Ledger(paths, State(), "s", Report())
    keeper.published(v, 12, paths.dest / "m")
    keeper.published(archive, 9, paths.dest / "m")
    keeper.save()
    state = load_state(paths)
    assert state.versions["m/3"].sums == {"a.bin": (5, "AAAAAA==")}
    assert state.versions["m/4"].sums is None
