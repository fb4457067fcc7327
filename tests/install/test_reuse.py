"""Linking the unchanged files of a version being staged, on a real file system: each file
is checked through its new name before it counts as linked."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gcs_model_sync.formats import extract
from gcs_model_sync.install.reuse import link_unchanged
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import Managed
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.source import checksum
from tests.support.plans import P, plan_of, view

FILES = {"a.bin": b"a" * 3000, "sub/b.bin": b"b" * 2000, "c.bin": b"c" * 1000}


def crc(data: bytes) -> str:
    return checksum.b64(checksum.extend(0, data))


def installed(paths: Paths, files: dict[str, bytes]) -> Managed:
    """Version m/1 on disk as a pass leaves it, and its state entry."""
    for rel, data in files.items():
        (paths.dest / "m" / "1" / rel).parent.mkdir(parents=True, exist_ok=True)
        (paths.dest / "m" / "1" / rel).write_bytes(data)
    sums = {rel: (len(data), crc(data)) for rel, data in files.items()}
    return Managed("m", "1", "fp", 6000, 0.0, None, sums)


def planned(paths: Paths, files: dict[str, bytes]) -> Plan:
    """The plan for m/2 holding `files`, with m/1 installed."""
    objects = [RemoteObject(f"{P}m/2/{rel}", 1, len(d), crc(d)) for rel, d in files.items()]
    return plan_of(objects, view([installed(paths, FILES)], {"m/1"}))


def stage(paths: Paths, plan: Plan) -> tuple[list[str], extract.Writer]:
    writer = extract.Writer(paths.staging / "w" / "tree", extract.Limits(1 << 30, "m/2"))
    reuse = plan.reuse[0] if plan.reuse else None
    left = link_unchanged(reuse, plan.installs[0].version, paths, writer)
    return [e.relpath for e in left], writer


def same(one: Path, other: Path) -> bool:
    return os.stat(one).st_ino == os.stat(other).st_ino


def test_unchanged_files_are_linked_and_the_rest_left_to_download(paths: Paths) -> None:
    plan = planned(paths, {**FILES, "c.bin": b"C" * 1200})

    left, writer = stage(paths, plan)

    assert left == ["c.bin"]
    assert same(writer.root / "a.bin", paths.dest / "m/1/a.bin")
    assert same(writer.root / "sub/b.bin", paths.dest / "m/1/sub/b.bin")
    assert not (writer.root / "c.bin").exists()
    assert writer.limits.written == 5000  # linked bytes count toward the version's size


def test_a_file_changed_in_place_is_left_to_download_and_not_linked(paths: Paths) -> None:
    plan = planned(paths, FILES)
    (paths.dest / "m/1/a.bin").write_bytes(b"x" * 3000)  # same size, other bytes

    left, writer = stage(paths, plan)

    assert left == ["a.bin"]
    assert not (writer.root / "a.bin").exists()
    assert (paths.dest / "m/1/a.bin").stat().st_nlink == 1


def test_a_file_that_changed_size_is_left_to_download(paths: Paths) -> None:
    plan = planned(paths, FILES)
    (paths.dest / "m/1/a.bin").write_bytes(b"a" * 10)

    left, writer = stage(paths, plan)

    assert left == ["a.bin"]
    assert not (writer.root / "a.bin").exists()


def test_a_symbolic_link_in_place_of_a_file_or_folder_is_not_followed(
    paths: Paths, tmp_path: Path
) -> None:
    plan = planned(paths, FILES)
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "a.bin").write_bytes(FILES["a.bin"])
    (outside / "sub" / "b.bin").write_bytes(FILES["sub/b.bin"])
    (paths.dest / "m/1/a.bin").unlink()
    (paths.dest / "m/1/a.bin").symlink_to(outside / "a.bin")
    sub = paths.dest / "m/1/sub"
    (sub / "b.bin").unlink()
    sub.rmdir()
    sub.symlink_to(outside / "sub")

    left, writer = stage(paths, plan)

    assert left == ["a.bin", "sub/b.bin"]
    assert not os.path.lexists(writer.root / "a.bin")
    assert not os.path.lexists(writer.root / "sub" / "b.bin")


def test_a_source_gone_since_the_plan_is_downloaded(paths: Paths) -> None:
    plan = planned(paths, FILES)
    (paths.dest / "m/1/a.bin").unlink()

    left, _writer = stage(paths, plan)

    assert left == ["a.bin"]


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EMLINK])
def test_a_file_system_that_refuses_the_link_falls_back_to_the_download(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    plan = planned(paths, FILES)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", refuse)  # the kernel's answer on such a file system
    left, writer = stage(paths, plan)

    assert sorted(left) == sorted(FILES)
    assert writer.limits.written == 0


def test_nothing_planned_leaves_every_file_to_download(paths: Paths) -> None:
    plan = plan_of([RemoteObject(f"{P}m/2/a.bin", 1, 3, crc(b"abc"))], view())

    left, _writer = stage(paths, plan)

    assert left == ["a.bin"]
