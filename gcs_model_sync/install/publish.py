"""Make a staged version or model file visible in one rename, and retire them the same way.

A reader (TF Serving polls every second) sees a version complete or not at all. Replacing
an existing version swaps the two folders atomically where the OS can (Linux renameat2
RENAME_EXCHANGE, macOS renamex_np RENAME_SWAP); elsewhere it falls back to two renames.
Replaced and retired trees go to the trash, which the next pass empties: a reader inside
one keeps a whole tree for a pass interval (git-sync's grace period).

None goes through a symbolic link below DEST (safepath): a version folder, a model folder
above it or a model file's, or the trash that is a link is refused with LinkRefused, an
OSError.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import sys
import uuid
from pathlib import Path

from gcs_model_sync.local import safepath
from gcs_model_sync.local.paths import make_dirs

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # Linux
_RENAME_SWAP = 2  # macOS renamex_np


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False when this OS or filesystem cannot."""
    if _LIBC is None:
        return False
    fa, fb = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux") and hasattr(_LIBC, "renameat2"):
        rc = _LIBC.renameat2(_AT_FDCWD, fa, _AT_FDCWD, fb, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(_LIBC, "renamex_np"):
        rc = _LIBC.renamex_np(fa, fb, _RENAME_SWAP)
    else:
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish(content: Path, target: Path, trash: Path) -> None:
    """Move `content` to `target`; an existing target is swapped out and then removed.

    The rename is not fsynced here: the ledger syncs the folders renamed in, in one go,
    before a state save records them (a crash before that only means a reinstall, never a
    partial version).
    """
    _check(target, trash)
    make_dirs(target.parent)
    try:
        os.rename(content, target)  # fails if target exists as a non-empty folder or a file
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        _replace(content, target, trash)


def _replace(content: Path, target: Path, trash: Path) -> None:
    if exchange(content, target):
        # The swap left the previous version where the new one was staged.
        os.rename(content, _trash_slot(trash, target))
    else:
        # Fallback: the version is missing for the instant between these two renames.
        os.rename(target, _trash_slot(trash, target))
        os.rename(content, target)


def retire(target: Path, trash: Path) -> None:
    """Take a version away in one rename; its tree is removed with the trash next pass.
    Like publish(), the rename is made durable by the ledger before the state records it."""
    _check(target, trash)
    os.rename(target, _trash_slot(trash, target))


def change_file(target: Path, dest: Path, staged: Path | None, new: bool = False) -> None:
    """Put a staged model file at `target` in one rename (a reader sees the old file or the
    new), or, with `staged` None, unlink it (one already gone is no error). A `new` file is
    linked instead, which raises FileExistsError rather than replace what someone put there
    since the scan. The change is to the entry itself, which it never follows: only the
    folders between DEST and it must not be links."""
    _refuse_links(dest, target.parent)
    if staged is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        return
    make_dirs(target.parent)
    if new:
        os.link(staged, target)
    else:
        os.replace(staged, target)


def _trash_slot(trash: Path, target: Path) -> Path:
    return trash / f"{target.name}.{uuid.uuid4().hex[:12]}"


def _check(target: Path, trash: Path) -> None:
    """Neither the version folder (nor a folder above it) nor the trash may be a link. DEST
    is where the two meet: the trash is DEST/.gcs-model-sync/trash."""
    _refuse_links(Path(os.path.commonpath([target, trash])), target, trash)


def _refuse_links(dest: Path, *paths: Path) -> None:
    for path in paths:
        safepath.check(dest, path)
