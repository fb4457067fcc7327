"""Hard-link the unchanged files of a version being staged from the installed version the
plan names (plan/reuse.py), each checked on disk first.

A link shares the file with the installed version, which is safe because nothing of ours
ever writes into a published version (staging writes new files, publishing renames whole
folders, a prune renames one into the trash: the linked file lives on in the other). The
file is checked after it is linked, through the new name: its size, and its CRC-32C read
back (a read of the local disk, no download), so a file edited in place since we installed
it, or a name swapped for a link, is downloaded instead. Any refusal to link (another file
system, a file system without hard links, too many links, the file gone) falls back to the
download, with no error.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from pathlib import Path

from gcs_model_sync.formats.extract import Writer
from gcs_model_sync.layout import Entry
from gcs_model_sync.local import safepath
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.logs import event
from gcs_model_sync.plan.reuse import Link, Reuse
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.source import checksum

READ = 1 << 20


def link_unchanged(
    reuse: Reuse | None, version: RemoteVersion, paths: Paths, writer: Writer
) -> tuple[Entry, ...]:
    """Link into `writer`'s tree what `reuse` names and the disk still holds; the entries
    of `version` left to download."""
    if reuse is None:
        return version.entries
    source = paths.version_dir(reuse.source.model, reuse.source.version)
    linked = {ln.relpath for ln in reuse.links if _link(paths.dest, source / ln.source, ln, writer)}
    return tuple(e for e in version.entries if e.relpath not in linked)


def _link(dest: Path, src: Path, link: Link, writer: Writer) -> bool:
    parent = posixpath.dirname(link.relpath)
    if parent and parent not in writer.dirs:
        writer.mkdir(parent)
    target = writer.root / link.relpath
    try:
        safepath.check_parent(dest, src)  # link() follows the folders on the way
        os.link(src, target, follow_symlinks=False)
    except OSError as exc:  # EXDEV, EPERM, EMLINK, ENOENT...: downloaded instead
        _fell_back(src, f"cannot link it ({exc.strerror or exc})")
        return False
    try:
        why = _differs(target, link)
    except OSError as exc:
        why = f"cannot read it ({exc.strerror or exc})"
    if why is not None:
        _fell_back(src, why)
        target.unlink()
        return False
    writer.limits.add(link.size)  # a linked file is part of the version, as a written one
    return True


def _differs(path: Path, link: Link) -> str | None:
    """How the file at `path` (never a symbolic link) differs from the listed object."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        if st.st_size != link.size:
            return f"{st.st_size} bytes, not the {link.size} installed"
        crc = 0
        while chunk := os.read(fd, READ):
            crc = checksum.extend(crc, chunk)
    finally:
        os.close(fd)
    if checksum.b64(crc) != link.crc32c:
        return "changed since it was installed (its CRC-32C differs)"
    return None


def _fell_back(path: Path, why: str) -> None:
    event(logging.INFO, "link_skipped", f"{path}: {why}; downloading it", path=str(path))
