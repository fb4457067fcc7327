"""One pass in-process against the emulator: how the engine batches durability work.

What a pass does is covered end to end in tests/e2e; here, what only the engine decides:
when staged versions are synced, and when their renames are made durable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs_model_sync import engine, local
from gcs_model_sync.config import Config, Source
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
    real = engine.sync_trees
    monkeypatch.setattr(engine, "BATCH_EVERY", 60.0)  # everything lands within one window
    monkeypatch.setattr(
        engine, "sync_trees", lambda roots: (barriers.append(len(roots)), real(roots))[1]
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
    real_save = engine.save_state
    monkeypatch.setattr(engine, "sync_dirs", lambda dirs, d: calls.append(("sync", set(dirs))))
    monkeypatch.setattr(
        engine, "save_state", lambda *a: (calls.append(("save", None)), real_save(*a))[1]
    )
    engine.sync_once(_config(emulator, bucket, dest, monkeypatch), StopToken())
    syncs = [c for c in calls if c[0] == "sync"]
    assert syncs == [("sync", {dest / "m1", dest / "m2", dest / "m3", dest / "deep" / "er"})]
    assert calls[-2:] == [syncs[0], ("save", None)]  # synced, then recorded
    assert local.load_state(local.Paths(dest))["m1/0001"].fingerprint.startswith("zip:")
