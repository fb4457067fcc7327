"""How our files land on disk: modes any user can read, writeback started early, and a full
disk told apart from a bad archive. Below every module that writes under DEST."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable
from pathlib import Path

from gcs_model_sync.errors import InsufficientSpace

# Installed modes, set explicitly rather than through the umask: a model server may run as
# another user. Files get EXEC_MODE when the archive gives them any execute bit.
FILE_MODE, EXEC_MODE, DIR_MODE = 0o644, 0o755, 0o755


WRITEBACK_EVERY = 16 * 1024 * 1024  # bytes written to a file between two writeback starts


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    fn = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
    if fn is None:
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return fn  # type: ignore[no-any-return]


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these bytes to disk now, without waiting (Linux's
    sync_file_range(SYNC_FILE_RANGE_WRITE); elsewhere nothing). The durability barrier before
    publishing then finds them written or under way instead of writing every staged byte at
    once: a 1 GiB version's syncfs took 1.2 s after the download, and ~0.1 s with this. A hint
    only: durability is still the barrier's job."""
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE; an error changes nothing


def set_mode(target: int | str | Path, mode: int) -> None:
    """chmod (fchmod for a descriptor). A file system that keeps no modes of its own (vfat,
    some network mounts) may refuse: its mount options decide them, so that is no error."""
    try:
        os.chmod(target, mode)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise


def raise_space(exc: OSError, where: str) -> None:
    """A full disk or quota is no fault of the archive: InsufficientSpace, not rejection."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise InsufficientSpace(f"{where}: no space left on the destination filesystem") from exc
