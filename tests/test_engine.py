"""One pass in-process against the emulator: how the engine batches durability work.

What a pass does is covered end to end in tests/e2e; here, what only the engine decides:
when staged versions are synced, and when their renames are made durable.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from gcs_model_sync import engine, install, local, publish, reads, saver
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import Interrupted
from gcs_model_sync.retry import StopToken
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
    real = install.sync_trees
    monkeypatch.setattr(install, "BATCH_EVERY", 60.0)  # everything lands within one window
    monkeypatch.setattr(
        install, "sync_trees", lambda roots: (barriers.append(len(roots)), real(roots))[1]
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
    real_save = saver.save_state
    monkeypatch.setattr(saver, "sync_dirs", lambda dirs, d: calls.append(("sync", set(dirs))))
    monkeypatch.setattr(
        saver, "save_state", lambda *a: (calls.append(("save", None)), real_save(*a))[1]
    )
    engine.sync_once(_config(emulator, bucket, dest, monkeypatch), StopToken())
    syncs = [c for c in calls if c[0] == "sync"]
    assert syncs == [("sync", {dest / "m1", dest / "m2", dest / "m3", dest / "deep" / "er"})]
    assert calls[-2:] == [syncs[0], ("save", None)]  # synced, then recorded
    assert local.load_state(local.Paths(dest)).versions["m1/0001"].fingerprint.startswith("zip:")


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
        real_sync, real_save = saver.sync_dirs, saver.save_state

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

        def save(paths: local.Paths, state: local.State, source: str) -> None:
            self.saves += 1
            for target, kind in self.undoable.items():
                m = state.versions.get(str(target.relative_to(self.dest)))
                if kind == "published" and m is not None and m.fingerprint != local.PENDING:
                    self.violations.append(f"save {self.saves} records {target}, not yet durable")
                if kind == "removed" and m is None:
                    self.violations.append(f"save {self.saves} forgets {target}, still undoable")
            real_save(paths, state, source)

        monkeypatch.setattr(publish, "publish", publish_)
        monkeypatch.setattr(publish, "retire", retire)
        monkeypatch.setattr(saver, "sync_dirs", sync)
        monkeypatch.setattr(saver, "save_state", save)


def test_no_state_save_records_a_rename_a_crash_could_undo(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saves during a pass (here after every rename), at its end: each syncs renames first."""
    for i in range(1, 5):
        bucket.put_zip(f"models/m{i % 2}/{i:04d}.zip", FILES)
    config = _config(emulator, bucket, dest, monkeypatch)
    monkeypatch.setattr(saver, "STATE_SAVE_EVERY", 0.0)  # every publish or prune saves
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
    versions = local.load_state(local.Paths(dest)).versions
    assert [v for v, m in versions.items() if m.fingerprint != "pending"]


def test_an_error_while_publishing_stops_every_worker_before_the_pass_ends(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at a state save: the pass fails, and none of its downloads go on."""
    bucket.put_zip("models/a/0001.zip", FILES)
    for i in range(1, 7):
        bucket.put_zip(f"models/b/{i:04d}.zip", FILES)
    config = _config(emulator, bucket, dest, monkeypatch)
    monkeypatch.setattr(saver, "STATE_SAVE_EVERY", 0.0)
    gate = threading.Event()  # model b's downloads are slow: they wait here, minding the stop
    real_read = reads.ObjectReader.read

    def read(reader: reads.ObjectReader, size: int = -1, /) -> bytes:
        while "/b/" in reader.obj.name and not gate.is_set():
            reader._bucket.stop.check()
            gate.wait(0.01)
        return real_read(reader, size)

    saves = 0
    real_save = saver.save_state

    def save(*args: Any) -> None:
        nonlocal saves
        saves += 1
        if saves == 2:  # the first after a publish (the first saved the pending entries)
            raise OSError(errno.ENOSPC, "No space left on device", str(dest))
        real_save(*args)

    monkeypatch.setattr(reads.ObjectReader, "read", read)
    monkeypatch.setattr(saver, "save_state", save)
    before = set(threading.enumerate())
    try:
        with pytest.raises(OSError, match="No space"):
            engine.sync_once(config, StopToken())
        workers = [t.name for t in set(threading.enumerate()) - before if t.name[:5] == "stage"]
        assert workers == []
        assert list(local.Paths(dest).staging.iterdir()) == []
    finally:
        gate.set()
    state = local.load_state(local.Paths(dest)).versions
    assert (dest / "a" / "0001").is_dir()
    assert "a/0001" in state  # published before the failed save: still ours
    assert not any(vid.startswith("b/") for vid in state)  # never installed: not ours


def test_settling_falls_back_to_the_node_clock_only_without_a_date_header(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every GCS response carries `Date`; should a proxy strip it, --settle is judged on this
    node's clock rather than never, and the log says so."""
    from gcs_model_sync.logs import log

    log.addHandler(caplog.handler)  # logs.setup() may have stopped propagation in this process
    caplog.set_level(logging.INFO, logger=log.name)
    try:
        _check_bucket_now(tmp_path, caplog)
    finally:
        log.removeHandler(caplog.handler)


def _check_bucket_now(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from gcs_model_sync.listing import Listing

    config = Config(source=Source.parse("gs://bkt/models"), dest=tmp_path, settle=60)
    assert engine._bucket_now(Listing([], 1_800_000_000.0), config) == 1_800_000_000.0
    assert not [r for r in caplog.records if getattr(r, "event", "") == "no_server_time"]

    before = time.time()
    assert before <= (engine._bucket_now(Listing([], None), config) or 0) <= time.time()
    assert [r for r in caplog.records if getattr(r, "event", "") == "no_server_time"]
    off = Config(source=Source.parse("gs://bkt/models"), dest=tmp_path, settle=0)
    assert engine._bucket_now(Listing([], None), off) is None  # nothing to judge


def test_what_the_file_system_refuses_under_dest_is_said_as_the_other_dest_problems(
    tmp_path: Path,
) -> None:
    import errno

    from gcs_model_sync.engine import dest_error
    from gcs_model_sync.errors import EXIT_FAILED, EXIT_USAGE

    afile = tmp_path / "afile"
    afile.write_text("x")
    below = dest_error(afile / "m", FileExistsError(errno.EEXIST, "File exists", str(afile)))
    read_only = dest_error(tmp_path, OSError(errno.EROFS, "Read-only file system", "x"))
    full = dest_error(tmp_path, OSError(errno.ENOSPC, "No space left on device", "x"))

    assert str(below) == f"--dest {afile / 'm'}: not a directory ({afile} is a file)"
    assert str(read_only) == f"--dest {tmp_path}: not writable (Read-only file system)"
    assert (below.exit_code, read_only.exit_code, full.exit_code) == (
        EXIT_USAGE,
        EXIT_USAGE,
        EXIT_FAILED,
    )


def test_a_failure_is_remembered_until_its_version_is_installed_or_changes(
    tmp_path: Path,
) -> None:
    from gcs_model_sync.layout import RemoteObject, fingerprint, group
    from gcs_model_sync.local import LastFailure, Paths, State
    from gcs_model_sync.plan import Install, RemoteVersion
    from gcs_model_sync.report import FailureKind, Report
    from gcs_model_sync.saver import StateSaver

    def install_of(key: str, generation: int = 1) -> Install:
        [((model, version, form), es)] = group([RemoteObject(key, generation, 9)], "").items()
        return Install(RemoteVersion(model, version, form, tuple(es), fingerprint(form, es)), "new")

    bad, fine, gone = install_of("m/8.zip"), install_of("m/9.zip"), install_of("m/7.zip")
    state = State(failed={"m/7": LastFailure(gone.version.fingerprint, "old")})
    keeper = StateSaver(Paths(tmp_path), state, "gs://b/")
    report = Report(published=["m/9"])
    report.fail(FailureKind.CONTENT, "m", "m/8", "gs://b/m/8.zip: not a zip file")
    report.fail(FailureKind.LOCAL, "m", "m/9", "a failure of a version published after all")

    engine._remember_failures((bad, fine), report, state, keeper)

    assert state.failed == {
        "m/8": LastFailure(bad.version.fingerprint, "gs://b/m/8.zip: not a zip file")
    }
    assert keeper.dirty
    changed = install_of("m/8.zip", generation=2)
    engine._remember_failures((changed,), Report(), state, keeper)
    assert state.failed == {}  # a new upload: whatever failed before says nothing of it
