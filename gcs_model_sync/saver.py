"""The state file during a pass: saved at most once a second, at the end, and on the way out,
each save after the renames it records are durable."""

from __future__ import annotations

import time
from pathlib import Path

from gcs_model_sync.durability import sync_dirs
from gcs_model_sync.paths import Paths
from gcs_model_sync.state import State, save_state

STATE_SAVE_EVERY = 1.0  # seconds; a crash between saves only costs a re-download


class StateSaver:
    """Writes the state file at most once a second during a pass, at its end, and on the way
    out of an interrupted or failed one. Every save that records renames first syncs the
    folders renamed since the last save (one syncfs for all of them, not an fsync per
    version): the state file never names a published version, nor forgets a removed one,
    that a crash could still undo."""

    def __init__(self, paths: Paths, state: State, source: str) -> None:
        self.paths, self.state, self.source = paths, state, source
        self.dirty = False
        self.renamed: set[Path] = set()  # folders whose entries this pass renamed, unsynced
        self._last = time.monotonic()

    def changed(self, renamed_in: Path) -> None:
        """A version or model file was published or removed in folder `renamed_in`."""
        self.renamed.add(renamed_in)
        self.dirty = True
        if time.monotonic() - self._last >= STATE_SAVE_EVERY:
            self.save()

    def save(self) -> None:
        if self.dirty:
            if self.renamed:  # durable first, then recorded
                sync_dirs(self.renamed, self.paths.dest)
                self.renamed.clear()
            save_state(self.paths, self.state, self.source)
            self.dirty = False
            self._last = time.monotonic()
