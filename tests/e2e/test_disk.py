"""Disk and file-system faults: full disks, read-only and missing destinations."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Sync
from tests.support.models import sample_files


def _mount(target: Path, options: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs; skipped where this process may not mount (not root, no CAP_SYS_ADMIN)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        _mount(mnt, "size=4m")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the --min-free-space test covers it")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def expanding_tgz(size: int) -> bytes:
    """A tiny .tar.gz that extracts to `size` bytes: passes the up-front space check."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("variables/variables.data-00000-of-00001")
        info.size = size
        tf.addfile(info, io.BytesIO(bytes(size)))
        pb = tarfile.TarInfo("saved_model.pb")
        pb.size = 3
        tf.addfile(pb, io.BytesIO(b"pb!"))
    return buf.getvalue()


def test_version_that_overflows_the_disk_fails_cleanly_then_succeeds_with_room(
    sync: Sync, small_fs: Path
) -> None:
    sync.dest = small_fs / "models"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    sync.bucket.put(sync.key("m/2.tar.gz"), expanding_tgz(6 * 1024 * 1024))

    full = sync.once()

    assert full.returncode == 1
    assert "m/2.tar.gz: no space left" in full.stderr
    assert "Traceback" not in full.stderr
    assert sync.versions("m") == ["1"]
    assert sync.version("m/1") == sample_files("a")
    assert list((sync.dest / ".gcs-model-sync" / "staging").iterdir()) == []

    subprocess.run(["mount", "-o", "remount,size=32m", str(small_fs)], check=True)
    roomy = sync.once()
    assert roomy.returncode == 0, roomy.stderr
    assert sync.versions("m") == ["1", "2"]


def test_full_disk_under_keep_frees_the_dropped_version_first_and_converges(
    sync: Sync, small_fs: Path
) -> None:
    """Issue 11: the 4 MiB disk holds two of these versions, not three. Deflated, each zip is
    a few KiB: only the size its central directory states shows that version 3 cannot fit."""
    sync.dest = small_fs / "models"
    for n in (1, 2):
        sync.bucket.put_zip(sync.key(f"m/{n}.zip"), sample_files(f"v{n}", size=550_000))
    assert sync.once("--keep", "2").returncode == 0
    assert sync.versions("m") == ["1", "2"]
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("v3", size=550_000))

    full = sync.once("--keep", "2")

    assert full.returncode == 0, full.stderr
    assert sync.versions("m") == ["2", "3"]
    assert sync.version("m/3") == sample_files("v3", size=550_000)
    assert sync.version("m/2") == sample_files("v2", size=550_000)
    err = full.stderr
    assert "before installing" in err
    assert err.index("pruned m/1") < err.index("published m/3")
    assert "Traceback" not in err
    assert list((sync.dest / ".gcs-model-sync" / "trash").iterdir()) == []

    again = sync.once("--keep", "2")
    assert again.returncode == 0, again.stderr
    assert "pass noop" in again.stderr
    assert sync.versions("m") == ["2", "3"]


def test_min_free_space_refuses_a_version_before_downloading_it(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    refused = sync.once("--min-free-space", "1000T")

    assert refused.returncode == 1
    assert "m/1.zip: needs about" in refused.stderr
    assert "--min-free-space" in refused.stderr
    assert sync.versions("m") == []
    assert sync.once().returncode == 0
    assert sync.versions("m") == ["1"]


def test_zip_bomb_is_stopped_by_max_version_size(sync: Sync) -> None:
    sync.bucket.put(sync.key("m/1.tar.gz"), expanding_tgz(5 * 1024 * 1024))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("fine"))

    result = sync.once("--max-version-size", "1M")

    assert result.returncode == 1
    assert "m/1.tar.gz: extracts to more than --max-version-size" in result.stderr
    assert sync.versions("m") == ["2"]


def test_staging_lives_beside_dest_not_in_the_temp_dir(sync: Sync, small_fs: Path) -> None:
    sync.dest = small_fs / "models"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    result = sync.once(env={"TMPDIR": "/nonexistent-tmp"})

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == sample_files("a")


def test_missing_dest_is_created(sync: Sync, tmp_path: Path) -> None:
    sync.dest = tmp_path / "a" / "b" / "models"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    assert sync.versions("m") == ["1"]


def test_read_only_dest_is_a_clear_error(sync: Sync, small_fs: Path) -> None:
    sync.dest = small_fs
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    result = sync.once()

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == f"gcs-model-sync: error: --dest {small_fs}: not writable (Read-only file system)"


def test_read_only_dest_that_holds_versions_is_the_same_clear_error(
    sync: Sync, small_fs: Path
) -> None:
    sync.dest = small_fs
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))

    result = sync.once()

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == f"gcs-model-sync: error: --dest {small_fs}: not writable (Read-only file system)"
    assert sync.version("m/1") == sample_files("a")
