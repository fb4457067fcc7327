"""The destination lock: one holder at a time, and never a file reached through a link."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from gcs_model_sync.errors import LockBusy
from gcs_model_sync.local import lock
from gcs_model_sync.local.safepath import OwnFolderLinked
from gcs_model_sync.retry import StopToken


def _fds_of(path: Path) -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                fds.append(int(name))
        except OSError:
            continue
    return fds


def test_the_holder_writes_its_pid_and_a_second_one_waits_then_gives_up(tmp_path: Path) -> None:
    lock_file = tmp_path / "lock"
    with lock.hold(lock_file, 1, StopToken()):
        assert lock_file.read_text() == f"{os.getpid()}\n"
        with (
            pytest.raises(LockBusy, match="another gcs-model-sync"),
            lock.hold(lock_file, 0.2, StopToken()),
        ):
            pass


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"precious\n")
    (tmp_path / "lock").symlink_to(target)
    with (
        pytest.raises(OwnFolderLinked, match="symbolic link"),
        lock.hold(tmp_path / "lock", 1, StopToken()),
    ):
        pass
    assert target.read_bytes() == b"precious\n"


def test_a_dangling_symlink_creates_nothing_where_it_points(tmp_path: Path) -> None:
    (tmp_path / "lock").symlink_to(tmp_path / "created-elsewhere")
    with pytest.raises(OwnFolderLinked), lock.hold(tmp_path / "lock", 1, StopToken()):
        pass
    assert not (tmp_path / "created-elsewhere").exists()


def test_a_hard_linked_lock_file_is_locked_but_never_truncated(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"precious\n")
    os.link(target, tmp_path / "lock")
    with lock.hold(tmp_path / "lock", 1, StopToken()):
        pass
    assert target.read_bytes() == b"precious\n"


def test_the_lock_is_not_inherited_by_a_child_process(tmp_path: Path) -> None:
    lock_file = tmp_path / "lock"
    with lock.hold(lock_file, 1, StopToken()):
        fds = _fds_of(lock_file)
        assert fds
        assert all(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC for fd in fds)
