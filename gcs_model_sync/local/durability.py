"""Durable writes and removals under DEST: atomic files, fsync/syncfs, scratch clean-up."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from gcs_model_sync.local import safepath
from gcs_model_sync.local.paths import Paths


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Readers see the old file or the new one, never a torn write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets us open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_dirs(dirs: Iterable[Path], dest: Path) -> None:
    """Make renames and new folders under `dest` durable: one syncfs(2) on Linux, elsewhere
    an fsync of each folder and of every folder between it and `dest`."""
    todo: set[Path] = set()
    for d in dirs:
        todo.add(d)
        todo.update(p for p in d.parents if p == dest or dest in p.parents)
    if not todo or _syncfs(dest):
        return
    for d in sorted(todo, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)


def sync_trees(roots: list[Path]) -> None:
    """Make staged versions durable before they are renamed into place.

    Linux: one syncfs(2) for the file system: one journal commit for all of them, instead of
    an fsync per file (a version of many small files would wait on each). Elsewhere: fsync every
    file and folder.
    """
    if roots and _syncfs(roots[0]):
        return
    for root in roots:
        _fsync_tree(root)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def _syncfs(path: Path) -> bool:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "syncfs"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return bool(libc.syncfs(fd) == 0)
    finally:
        os.close(fd)


class Cleaned(NamedTuple):
    """What clean_scratch() removed: staging left by a killed run, and trees in the trash."""

    staging: int
    trash: int


def clean_scratch(paths: Paths) -> Cleaned:
    """Empty staging and the trash; safe because we hold the lock."""
    safepath.check_own(paths.dest, (paths.staging, paths.trash))
    removed = []
    for d in (paths.staging, paths.trash):
        n = 0
        if d.is_dir():
            for child in d.iterdir():
                remove_tree(child)
                n += 1
        removed.append(n)
    return Cleaned(*removed)


def remove_tree(path: Path) -> None:
    """Remove a folder or a file; a symbolic link is removed itself, never what it points
    to (rmtree does not follow the links inside a tree either)."""
    try:
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return
    if is_dir:
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
