"""Writing model files (`--model-files`) in-process against the emulator: what only this
module decides, when ownership is recorded and what a file may be renamed over. What a pass
does with them end to end is in tests/e2e/test_model_files.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gcs_model_sync import engine
from gcs_model_sync.config import Config, Source
from gcs_model_sync.install import model_files, publish
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import PENDING_FILE, State, load_state
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan.files_plan import FileChange
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket

FILES = {"saved_model.pb": b"pb"}


def _config(emulator: Emulator, bucket: SeededBucket, dest: Path,
            monkeypatch: pytest.MonkeyPatch) -> Config:  # fmt: skip
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    source = Source.parse(f"gs://{bucket.name}/models")
    return Config(source=source, dest=dest, workers=4, model_files=True)


def test_ownership_is_on_disk_before_a_file_is_renamed_into_place(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash right after the rename leaves a file the state calls ours (pending), so the
    next pass writes it again instead of leaving it alone as hand-made."""
    config = _config(emulator, bucket, dest, monkeypatch)
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/config.pbtxt", b"one")
    assert engine.sync_once(config, StopToken()).exit_code == 0
    bucket.put("models/m/config.pbtxt", b"two")
    seen: list[int] = []
    real = os.replace

    def crash_after_rename(src: str | Path, dst: str | Path) -> None:
        real(src, dst)
        seen.append(load_state(Paths(dest)).files["m/config.pbtxt"].generation)
        raise SystemExit("killed")  # nothing after this runs, as after kill -9

    monkeypatch.setattr(publish.os, "replace", crash_after_rename)
    with pytest.raises(SystemExit):
        engine.sync_once(config, StopToken())
    assert seen == [PENDING_FILE]
    monkeypatch.undo()
    config = _config(emulator, bucket, dest, monkeypatch)
    report = engine.sync_once(config, StopToken())
    assert report.files_written == ["m/config.pbtxt"]
    assert (dest / "m" / "config.pbtxt").read_bytes() == b"two"


def test_a_new_file_is_never_renamed_over_one_that_appeared_since_the_scan(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(emulator, bucket, dest, monkeypatch)
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/labels.txt", b"from the bucket")
    real_apply = model_files.apply

    def someone_writes_first(*args: object, **kwargs: object) -> None:
        (dest / "m" / "labels.txt").write_bytes(b"by hand")
        real_apply(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(model_files, "apply", someone_writes_first)
    report = engine.sync_once(config, StopToken())
    assert (dest / "m" / "labels.txt").read_bytes() == b"by hand"
    assert report.files_written == []
    assert "m/labels.txt" not in load_state(Paths(dest)).files  # not ours


def test_a_file_is_never_written_or_removed_through_a_linked_model_folder(
    tmp_path: Path,
) -> None:
    """What the plan did not stop (a link made during the pass) is refused where the file is
    renamed or unlinked: one line naming the link, a failure of that file."""
    paths = Paths(tmp_path / "models")
    paths.ensure()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.pbtxt").write_bytes(b"theirs")
    (paths.dest / "m").symlink_to(outside)
    staged = paths.staging / "config.pbtxt"
    staged.write_bytes(b"ours")
    obj = RemoteObject("models/m/config.pbtxt", 7, 4)
    report = Report()
    write = FileChange("m", "config.pbtxt", obj, "changed in the bucket")
    remove = FileChange("m", "config.pbtxt", None, "removed from the bucket")
    config = Config(source=Source.parse("gs://bucket/models"), dest=paths.dest)
    run = Pass(config, StopToken(), paths, None, report)  # type: ignore[arg-type]  # no reads
    run.keep(State())
    model_files._carry_out(run, write, (staged, 4))
    model_files._carry_out(run, remove, None)
    assert (outside / "config.pbtxt").read_bytes() == b"theirs"
    assert [f.message for f in report.failures] == [
        f"{paths.dest / 'm' / 'config.pbtxt'}: cannot write: a symbolic link below --dest; "
        f"not followed ({paths.dest / 'm'})",
        f"{paths.dest / 'm' / 'config.pbtxt'}: cannot remove: a symbolic link below --dest; "
        f"not followed ({paths.dest / 'm'})",
    ]
    assert report.files_written == []
    assert report.files_removed == []
