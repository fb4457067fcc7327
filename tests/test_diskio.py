"""How files land on disk: modes whatever the umask, writeback hints, a full disk told apart."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gcs_model_sync.diskio import DIR_MODE, FILE_MODE, raise_space, set_mode, start_writeback
from gcs_model_sync.errors import InsufficientSpace


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_or_quota_is_insufficient_space_naming_the_place(code: int) -> None:
    with pytest.raises(InsufficientSpace, match=r"^gs://b/m/1\.zip: no space left"):
        raise_space(OSError(code, os.strerror(code)), "gs://b/m/1.zip")


def test_other_write_errors_are_left_to_the_caller() -> None:
    raise_space(OSError(errno.EACCES, "Permission denied"), "gs://b/m/1.zip")  # no raise


def test_modes_are_set_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        (tmp_path / "d").mkdir()
        (tmp_path / "f").write_bytes(b"x")
        set_mode(tmp_path / "d", DIR_MODE)
        with open(tmp_path / "f", "rb") as f:
            set_mode(f.fileno(), FILE_MODE)
    finally:
        os.umask(old)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_a_writeback_hint_changes_no_byte(tmp_path: Path) -> None:
    path = tmp_path / "f"
    with open(path, "wb") as f:
        f.write(b"abc" * 1000)
        f.flush()
        start_writeback(f.fileno(), 0, 3000)
    assert path.read_bytes() == b"abc" * 1000
