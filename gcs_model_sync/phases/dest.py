"""What --dest must be before a pass writes there, said as one line in one format."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from gcs_model_sync.config import dest_not_a_folder
from gcs_model_sync.errors import ConfigError, SyncError, os_error


def check_dest(dest: Path) -> None:
    """A --dest that `once` or `run` cannot write is a usage error before any pass (a
    read-only mount, no permission), said as the other --dest problems are."""
    for place in (dest, *dest.parents):
        if place.is_dir():
            break
    else:
        return
    if not os.access(place, os.W_OK | os.X_OK):
        raise ConfigError(f"--dest {dest}: not writable ({_unwritable(place)})")


def _unwritable(place: Path) -> str:
    try:
        read_only = bool(os.statvfs(place).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return os.strerror(errno.EROFS if read_only else errno.EACCES)


def dest_error(dest: Path, exc: OSError) -> SyncError:
    """What the file system said when we created our folders or the lock under --dest."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and (problem := dest_not_a_folder(dest)):
        return ConfigError(problem)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ConfigError(f"--dest {dest}: not writable ({exc.strerror})")
    return SyncError(f"--dest {dest}: cannot write there ({os_error(exc)})")
