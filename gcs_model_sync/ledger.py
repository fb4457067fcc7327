"""The state file during a pass, and the one place a change is recorded: each step that
publishes, retires, writes or removes calls one method here, which updates the state, says
it in the report, and schedules the save.

Saved at most once a second, at the end, and on the way out; each save after the renames it
records are durable.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from gcs_model_sync.failures import FailureKind
from gcs_model_sync.layout import Form
from gcs_model_sync.local.durability import sync_dirs
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import (
    PENDING,
    PENDING_FILE,
    LastFailure,
    Managed,
    ManagedFile,
    Refusal,
    State,
    save_state,
)
from gcs_model_sync.plan.reuse import crc_of
from gcs_model_sync.report import Report

if TYPE_CHECKING:
    from gcs_model_sync.plan.files_plan import FileChange
    from gcs_model_sync.plan.versions import RemoteVersion

_T = TypeVar("_T")

STATE_SAVE_EVERY = 1.0  # seconds; a crash between saves only costs a re-download


class Ledger:
    """Writes the state file at most once a second during a pass, at its end, and on the way
    out of an interrupted or failed one. Every save that records renames first syncs the
    folders renamed since the last save (one syncfs for all of them, not an fsync per
    version): the state file never names a published version, nor forgets a removed one,
    that a crash could still undo."""

    def __init__(self, paths: Paths, state: State, source: str, report: Report) -> None:
        self.paths, self.state, self.source, self.report = paths, state, source, report
        self.dirty = False
        self.renamed: set[Path] = set()  # folders whose entries this pass renamed, unsynced
        self._last = time.monotonic()

    def save(self) -> None:
        if self.dirty:
            if self.renamed:  # durable first, then recorded
                sync_dirs(self.renamed, self.paths.dest)
                self.renamed.clear()
            save_state(self.paths, self.state, self.source)
            self.dirty = False
            self._last = time.monotonic()

    def _changed(self, renamed_in: Path) -> None:
        """A version or model file was published or removed in folder `renamed_in`."""
        self.renamed.add(renamed_in)
        self.dirty = True
        if time.monotonic() - self._last >= STATE_SAVE_EVERY:
            self.save()

    # Versions

    def pending(self, versions: Iterable[RemoteVersion]) -> dict[str, Managed | None]:
        """Own `versions` as pending, saved before any publish (a crash leaves "reinstall",
        never an orphan); returns what was recorded before, for restore()."""
        managed = self.state.versions
        previous = {}
        for v in versions:
            previous[v.id] = managed.get(v.id)
            managed[v.id] = Managed(v.model, v.version, PENDING)
        self.dirty = True
        self.save()
        return previous

    def restore(self, previous: dict[str, Managed | None]) -> None:
        """Versions not published this pass get their old ownership back (unsaved)."""
        self._give_back(self.state.versions, previous, set(self.report.published))

    def published(self, v: RemoteVersion, nbytes: int, folder: Path) -> None:
        """`v` renamed into `folder`. Reported before the save: one that fails must not
        disown it."""
        objects = (
            {e.relpath: e.obj.generation for e in v.entries} if v.form is Form.FOLDER else None
        )
        sums = (
            {e.relpath: (e.obj.size, crc) for e in v.entries if (crc := crc_of(e.obj))}
            if v.form is Form.FOLDER
            else None
        )
        self.state.versions[v.id] = Managed(
            v.model, v.version, v.fingerprint, nbytes, time.time(), objects, sums
        )
        self.report.published.append(v.id)
        self._changed(folder)

    def retired(self, m: Managed, folder: Path) -> None:
        """`m` renamed out of `folder` into the trash; reported before the save, so a save
        that fails still counts it as pruned."""
        self.state.versions.pop(m.id, None)
        self.report.pruned.append(m.id)
        self._changed(folder)

    def forget(self, versions: tuple[str, ...], files: tuple[str, ...]) -> None:
        """Disown versions and files that are gone from disk and need no prune."""
        for vid in versions:
            self.state.versions.pop(vid, None)
        for fid in files:
            self.state.files.pop(fid, None)
        self.dirty = self.dirty or bool(versions or files)

    # Model files

    def files_pending(self, changes: Iterable[FileChange]) -> dict[str, ManagedFile | None]:
        """Own the files about to be written as pending, saved before any rename."""
        previous = {}
        for c in changes:
            previous[c.id] = self.state.files.get(c.id)
            self.state.files[c.id] = ManagedFile(c.model, c.name, PENDING_FILE)
        self.dirty = True
        self.save()
        return previous

    def files_restore(self, previous: dict[str, ManagedFile | None]) -> None:
        """Files not written get their old ownership back (unsaved)."""
        self._give_back(self.state.files, previous, set(self.report.files_written))

    def _give_back(
        self, owned: dict[str, _T], previous: dict[str, _T | None], done: set[str]
    ) -> None:
        for key, before in previous.items():
            if key in done:
                continue
            if before is None:
                owned.pop(key, None)
            else:
                owned[key] = before
            self.dirty = True  # the pending entry on disk must not outlive the pass

    def file_written(self, c: FileChange, nbytes: int) -> None:
        assert c.obj is not None
        self.state.files[c.id] = ManagedFile(c.model, c.name, c.obj.generation, nbytes)
        self.report.files_written.append(c.id)
        self._changed(self.paths.dest / c.model)

    def file_removed(self, c: FileChange) -> None:
        self.state.files.pop(c.id, None)
        self.report.files_removed.append(c.id)
        self._changed(self.paths.dest / c.model)

    # What `status` says of versions not installed

    def refused(self, standing: Iterable[str], command: str) -> None:
        """Keep a refusal while its version is listed unchanged (`standing`: the refused ids
        the plan still holds back); forget it once the version is published or gone (a
        refused version is not downloaded again until its object changes)."""
        standing = set(standing) - set(self.report.published)
        kept = {vid: r for vid, r in self.state.refused.items() if vid in standing}
        for vid, (fingerprint, message) in self.report.refusals.items():
            kept[vid] = Refusal(fingerprint, command, message)
        if kept != self.state.refused:
            self.state.refused = kept
            self.dirty = True

    def failed(self, tried: Iterable[RemoteVersion]) -> None:
        """Why each install failed, for `status` in the passes after: kept while the version
        is listed unchanged and not installed; a pass that did not try it keeps what was
        known (`tried`: the versions this pass meant to install)."""
        pending = {v.id: v for v in tried}
        done = set(self.report.published)
        why: dict[str, str] = {}
        for f in self.report.failures:
            if f.version in pending and f.kind is not FailureKind.ROLLOUT:
                why.setdefault(f.version, f.message)
        kept = {
            vid: last
            for vid, last in self.state.failed.items()
            if vid in pending and vid not in done and last.fingerprint == pending[vid].fingerprint
        }
        kept.update({vid: LastFailure(pending[vid].fingerprint, m) for vid, m in why.items()})
        kept = {vid: last for vid, last in kept.items() if vid not in done}
        if kept != self.state.failed:
            self.state.failed = kept
            self.dirty = True
