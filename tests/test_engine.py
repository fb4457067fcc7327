"""One pass in-process against the emulator: how the engine batches durability work.

What a pass does is covered end to end in tests/e2e; here, what only the engine decides:
when staged versions are synced, and when their renames are made durable.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from gcs_model_sync import engine, ledger
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import Interrupted
from gcs_model_sync.install import publish, workers
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import PENDING, State, load_state
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source import reads
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket

FILES = {"saved_model.pb": b"pb", "variables/variables.index": b"ix"}


def _config(emulator: Emulator, bucket: SeededBucket, dest: Path,
            monkeypatch: pytest.MonkeyPatch) -> Config:  # fmt: skip
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    return Config(source=Source.parse(f"gs://{bucket.name}/models"), dest=dest, workers=4)


def test_versions_staged_close_together_share_one_durability_barrier(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A syncfs per tiny version stalled every other thread's metadata writes."""
    for i in range(1, 13):
        bucket.put_zip(f"models/m{i % 3}/{i:04d}.zip", FILES)
    barriers: list[int] = []
    real = workers.sync_trees
    monkeypatch.setattr(workers, "BATCH_EVERY", 60.0)  # everything lands within one window
    monkeypatch.setattr(
        workers, "sync_trees", lambda roots: (barriers.append(len(roots)), real(roots))[1]
    )
    report = engine.sync_once(_config(emulator, bucket, dest, monkeypatch), StopToken())
    assert len(report.published) == 12
    assert barriers == [12]


def test_renames_are_made_durable_once_before_the_final_state_save(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1, 4):
        bucket.put_zip(f"models/m{i}/0001.zip", FILES)
    bucket.put_zip("models/deep/er/0001.zip", FILES)
    calls: list[tuple[str, object]] = []
    real_save = ledger.save_state
    monkeypatch.setattr(ledger, "sync_dirs", lambda dirs, d: calls.append(("sync", set(dirs))))
    monkeypatch.setattr(
        ledger, "save_state", lambda *a: (calls.append(("save", None)), real_save(*a))[1]
    )
    engine.sync_once(_config(emulator, bucket, dest, monkeypatch), StopToken())
    syncs = [c for c in calls if c[0] == "sync"]
    assert syncs == [("sync", {dest / "m1", dest / "m2", dest / "m3", dest / "deep" / "er"})]
    assert calls[-2:] == [syncs[0], ("save", None)]  # synced, then recorded
    assert load_state(Paths(dest)).versions["m1/0001"].fingerprint.startswith("zip:")


class Durability:
    """A crash model: the renames a power loss right now could still undo.

    publish/retire renames are recorded as undoable until sync_dirs covers their folder; every
    state save is checked as if the machine crashed right after it: the state file must not
    name a published version (nor miss a removed one) whose rename could still be undone.
    """

    def __init__(self, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dest = dest
        self.undoable: dict[Path, str] = {}  # target -> "published" | "removed"
        self.saves = 0
        self.violations: list[str] = []
        real_publish, real_retire = publish.publish, publish.retire
        real_sync, real_save = ledger.sync_dirs, ledger.save_state

        def publish_(content: Path, target: Path, trash: Path) -> None:
            real_publish(content, target, trash)
            self.undoable[target] = "published"

        def retire(target: Path, trash: Path) -> None:
            real_retire(target, trash)
            self.undoable[target] = "removed"

        def sync(dirs: Iterable[Path], d: Path) -> None:
            dirs = set(dirs)
            real_sync(dirs, d)
            self.undoable = {t: k for t, k in self.undoable.items() if t.parent not in dirs}

        def save(paths: Paths, state: State, source: str) -> None:
            self.saves += 1
            for target, kind in self.undoable.items():
                m = state.versions.get(str(target.relative_to(self.dest)))
                if kind == "published" and m is not None and m.fingerprint != PENDING:
                    self.violations.append(f"save {self.saves} records {target}, not yet durable")
                if kind == "removed" and m is None:
                    self.violations.append(f"save {self.saves} forgets {target}, still undoable")
            real_save(paths, state, source)

        monkeypatch.setattr(publish, "publish", publish_)
        monkeypatch.setattr(publish, "retire", retire)
        monkeypatch.setattr(ledger, "sync_dirs", sync)
        monkeypatch.setattr(ledger, "save_state", save)


def test_no_state_save_records_a_rename_a_crash_could_undo(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saves during a pass (here after every rename), at its end: each syncs renames first."""
    for i in range(1, 5):
        bucket.put_zip(f"models/m{i % 2}/{i:04d}.zip", FILES)
    config = _config(emulator, bucket, dest, monkeypatch)
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 0.0)  # every publish or prune saves
    crash = Durability(dest, monkeypatch)
    assert len(engine.sync_once(config, StopToken()).published) == 4
    bucket.delete("models/m0/0002.zip")
    bucket.delete("models/m1/0003.zip")
    assert len(engine.sync_once(config, StopToken()).pruned) == 2
    assert crash.saves >= 6  # pending entries, then one a rename (4 publishes, 2 prunes)
    assert crash.violations == []


def test_the_state_saved_on_interrupt_records_only_durable_renames(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1, 4):
        bucket.put_zip(f"models/m/{i:04d}.zip", FILES)
    config = _config(emulator, bucket, dest, monkeypatch)
    crash = Durability(dest, monkeypatch)
    stop = StopToken()
    counted = publish.publish  # the crash model's, which records the rename

    def publish_then_stop(content: Path, target: Path, trash: Path) -> None:
        counted(content, target, trash)
        stop.set(15)  # SIGTERM right after the first rename

    monkeypatch.setattr(publish, "publish", publish_then_stop)
    with pytest.raises(Interrupted):
        engine.sync_once(config, stop)
    assert crash.saves == 2  # the pending entries, then the save on the way out
    assert crash.violations == []
    versions = load_state(Paths(dest)).versions
    assert [v for v, m in versions.items() if m.fingerprint != "pending"]


def test_an_error_while_publishing_stops_every_worker_before_the_pass_ends(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at a state save: the pass fails, and none of its downloads go on."""
    bucket.put_zip("models/a/0001.zip", FILES)
    for i in range(1, 7):
        bucket.put_zip(f"models/b/{i:04d}.zip", FILES)
    config = _config(emulator, bucket, dest, monkeypatch)
    monkeypatch.setattr(ledger, "STATE_SAVE_EVERY", 0.0)
    gate = threading.Event()  # model b's downloads are slow: they wait here, minding the stop
    real_read = reads.ObjectReader.read

    def read(reader: reads.ObjectReader, size: int = -1, /) -> bytes:
        while "/b/" in reader.obj.name and not gate.is_set():
            reader._bucket.stop.check()
            gate.wait(0.01)
        return real_read(reader, size)

    saves = 0
    real_save = ledger.save_state

    def save(*args: Any) -> None:
        nonlocal saves
        saves += 1
        if saves == 2:  # the first after a publish (the first saved the pending entries)
            raise OSError(errno.ENOSPC, "No space left on device", str(dest))
        real_save(*args)

    monkeypatch.setattr(reads.ObjectReader, "read", read)
    monkeypatch.setattr(ledger, "save_state", save)
    before = set(threading.enumerate())
    try:
        with pytest.raises(OSError, match="No space"):
            engine.sync_once(config, StopToken())
        workers = [t.name for t in set(threading.enumerate()) - before if t.name[:5] == "stage"]
        assert workers == []
        assert list(Paths(dest).staging.iterdir()) == []
    finally:
        gate.set()
    state = load_state(Paths(dest)).versions
    assert (dest / "a" / "0001").is_dir()
    assert "a/0001" in state  # published before the failed save: still ours
    assert not any(vid.startswith("b/") for vid in state)  # never installed: not ours
