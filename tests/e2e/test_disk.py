"""Disk and file-system faults: full disks, read-only and missing destinations."""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import Sync
from tests.e2e.test_big_objects import SLICED, MiB, big_version, interrupt, partial_dir
from tests.support.models import sample_files


def _mount(target: Path, options: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        check=True,
        capture_output=True,
    )


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `where`; skipped where this process may not mount (not root, no
    CAP_SYS_ADMIN)."""
    where.mkdir()
    try:
        _mount(where, f"size={size}")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the --min-free-space test covers it")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs."""
    with tmpfs(tmp_path / "small", "4m") as mnt:
        yield mnt


@pytest.fixture
def disk_20m(tmp_path: Path) -> Iterator[Path]:
    """A 20 MiB tmpfs: room for one 15 MiB file, not for it and a second copy of most of it."""
    with tmpfs(tmp_path / "disk", "20m") as mnt:
        yield mnt


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


def _stopped_two_thirds_in(proxied: Sync, disk: Path, sig: signal.Signals) -> dict[str, bytes]:
    """A folder version with a 15 MiB file, its pass stopped by `sig` about 10 MiB in."""
    proxied.dest = disk / "models"
    files = big_version("r", 15 * MiB)
    proxied.bucket.put_folder(proxied.key("m/1"), files)
    interrupt(proxied, sig, 10 * MiB)
    assert proxied.versions("m") == []
    assert list(partial_dir(proxied).iterdir())
    return files


def test_pass_stopped_two_thirds_into_a_big_file_on_a_small_disk_resumes_and_publishes(
    proxied: Sync, disk_20m: Path
) -> None:
    """15 MiB do not fit beside the 10 MiB already down: only the 5 MiB still missing are
    needed, and the bytes on disk are what the version is built from."""
    files = _stopped_two_thirds_in(proxied, disk_20m, signal.SIGKILL)

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    assert "needs about" not in result.stderr
    assert proxied.version("m/1") == files
    assert list(partial_dir(proxied).iterdir()) == []


def test_resumed_partial_that_cannot_fit_is_freed_and_the_next_pass_converges_with_room(
    proxied: Sync, disk_20m: Path
) -> None:
    """The disk fills up (8 MiB of something else) after a pass stopped 10 MiB into a 15 MiB
    file: even the 5 MiB still missing do not fit. The partial is freed rather than held
    forever; later passes fail with the ordinary error until there is room, then converge."""
    files = _stopped_two_thirds_in(proxied, disk_20m, signal.SIGTERM)
    filler = disk_20m / "filler"
    filler.write_bytes(bytes(8 * MiB))
    big = proxied.key("m/1/variables/variables.data-00000-of-00001")

    freed = proxied.once(*SLICED)

    assert freed.returncode == 1
    assert "m/1/: needs about" in freed.stderr
    assert f"{big}: removed the partial download" in freed.stderr
    assert "Traceback" not in freed.stderr
    assert list(partial_dir(proxied).iterdir()) == []
    assert proxied.versions("m") == []

    again = proxied.once(*SLICED)

    assert again.returncode == 1
    assert "m/1/: needs about" in again.stderr
    assert "removed the partial download" not in again.stderr

    filler.unlink()
    roomy = proxied.once(*SLICED)

    assert roomy.returncode == 0, roomy.stderr
    assert proxied.version("m/1") == files
    assert list(partial_dir(proxied).iterdir()) == []


def test_a_version_that_does_not_fit_holds_back_only_its_own_models_deletions(
    sync: Sync,
) -> None:
    """Deleting elsewhere is what gives a full disk room back: a version refused for space
    keeps its own model's versions (the one served stays), not every other model's."""
    sync.bucket.put_zip(sync.key("a/1.zip"), sample_files("a1"))
    sync.bucket.put_zip(sync.key("b/1.zip"), sample_files("b1"))
    assert sync.once().returncode == 0
    sync.bucket.put_zip(sync.key("a/2.zip"), sample_files("a2"))
    sync.bucket.delete(sync.key("b/1.zip"))

    full = sync.once("--keep", "1", "--min-free-space", "1000T")

    assert full.returncode == 1
    assert "a/2.zip: needs about" in full.stderr
    assert sync.versions("a") == ["1"]
    assert "not deleting a/1: another version of this model failed" in full.stderr
    assert sync.versions("b") == []
    assert "pruned b/1" in full.stderr


def test_a_full_disk_under_keep_frees_a_dropped_version_rather_than_a_resumable_partial(
    proxied: Sync, disk_20m: Path
) -> None:
    """What a resumed partial holds counts when a full disk decides what to free first: the
    dropped a/1 makes room for the few MiB b/1 still lacks, not for all 12 of them."""
    proxied.dest = disk_20m / "models"
    for n in (1, 2):
        proxied.bucket.put_folder(proxied.key(f"a/{n}"), big_version(f"a{n}", MiB))
    assert proxied.once(*SLICED).returncode == 0
    files = big_version("b", 12 * MiB)
    proxied.bucket.put_folder(proxied.key("b/1"), files)
    interrupt(proxied, signal.SIGTERM, 8 * MiB)
    partial = partial_dir(proxied)
    held = sum(p.stat().st_blocks * 512 for p in partial.iterdir())
    lacking = sum(len(b) for b in files.values()) - held
    # Leave 512 KiB less than b/1 lacks: a/1 (1 MiB) is worth freeing, b/1's partial is not
    # to be thrown away.
    filler = disk_20m / "filler"
    filler.write_bytes(bytes(shutil.disk_usage(disk_20m).free - lacking + 512 * 1024))

    result = proxied.once(*SLICED, "--keep", "1")

    assert result.returncode == 0, result.stderr
    assert "removed the partial download" not in result.stderr
    assert "resuming" in result.stderr
    assert "pruned a/1" in result.stderr
    assert proxied.versions("a") == ["2"]
    assert proxied.version("b/1") == files


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
