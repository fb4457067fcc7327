"""The safe Writer every archive format extracts through, into a staging folder.

Every member is checked before a byte is written: no absolute paths, no `..`, no links
that leave the version folder, no devices or fifos, no duplicate files, and a cap on the
total extracted size (zip bombs). Any problem raises VersionRejected naming the object.
How each format walks its members is its own module's (zipformat, zipstream, tarstream).
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
from pathlib import Path

from gcs_model_sync.diskio import (
    DIR_MODE,
    EXEC_MODE,
    FILE_MODE,
    WRITEBACK_EVERY,
    raise_space,
    set_mode,
    start_writeback,
)
from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats.members import Members
from gcs_model_sync.formats.stream import COPY_CHUNK, Chunks


class Limits:
    """Counts bytes written across one version and enforces --max-version-size."""

    def __init__(self, max_bytes: int, where: str) -> None:
        self.max_bytes = max_bytes
        self.where = where
        self.written = 0

    def add(self, n: int) -> None:
        self.written += n
        if self.written > self.max_bytes:
            raise VersionRejected(
                f"{self.where}: extracts to more than --max-version-size {self.max_bytes} bytes"
            )


def member_path(name: str, where: str) -> str | None:
    """Normalise an archive member name to a safe relative path (None for the root itself)."""
    if "\x00" in name:
        raise VersionRejected(f"{where}: member name contains NUL")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise VersionRejected(f"{where}: absolute member path {name!r}")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise VersionRejected(f"{where}: member path {name!r} escapes the version folder")
    return "/".join(parts) or None


# errors that come from a member's name or kind, rather than from the disk
_MEMBER_ERRNOS = {
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
    errno.EINVAL,
    errno.EILSEQ,
    errno.ELOOP,
    errno.EMLINK,
}


class Writer:
    """Creates files and folders under `root`, refusing anything that would land outside.

    Files are 0644 (0755 if executable) and folders 0755 whatever the process umask.
    Durability is not its job: workers.py syncs each batch of staged versions at once.
    `members` says which files are written (the filters) and refuses pickles; a member it
    leaves out is read past, never written, and a hard link to it is left out too.
    """

    def __init__(self, root: Path, limits: Limits, members: Members | None = None) -> None:
        self.root = root
        self.limits = limits
        self.members = members
        self.skipped: set[str] = set()
        self.dirs: set[str] = set()
        self.links: list[tuple[str, str]] = []
        root.mkdir(parents=True, exist_ok=True)
        set_mode(root, DIR_MODE)  # it may become the version folder itself

    def fresh(self) -> Writer:
        """An empty tree again, counting from zero on the same Limits (a reservation reads
        them): for a format that starts its extraction over another way."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.limits.written = 0
        return Writer(self.root, self.limits, self.members)

    def _parent(self, rel: str) -> Path:
        parent = posixpath.dirname(rel)
        if parent and parent not in self.dirs:
            self.mkdir(parent, member=False)
        return self.root / rel

    def _refused(self, rel: str, exc: OSError) -> VersionRejected:
        """The file system will not take this member: a name clash, too long, and so on."""
        raise_space(exc, self.limits.where)
        if exc.errno not in _MEMBER_ERRNOS:
            raise exc  # a problem of this disk, not of the archive
        if isinstance(exc, FileExistsError):
            return VersionRejected(f"{self.limits.where}: duplicate member {rel!r}")
        why = exc.strerror
        return VersionRejected(f"{self.limits.where}: cannot create member {rel!r} ({why})")

    def wanted(self, rel: str) -> bool:
        return self.members is None or self.members.wanted(rel)

    def _skip(self, rel: str, src: Chunks | None = None) -> None:
        while src is not None and src.read(COPY_CHUNK):  # a zip member's CRC needs every byte
            pass
        self.skipped.add(rel)

    def mkdir(self, rel: str, member: bool = True) -> None:
        """A folder: an archive's folder `member` (one the filters leave out is not made), or
        one a file needs."""
        if member and not self.wanted(rel + "/"):
            return self._skip(rel)
        path = self.root
        for part in rel.split("/"):
            path = path / part
            if os.path.islink(path):
                raise VersionRejected(f"{self.limits.where}: member path {rel!r} crosses a link")
            try:
                os.mkdir(path)
                set_mode(path, DIR_MODE)  # mkdir's mode goes through the umask
            except FileExistsError as exc:
                if not os.path.isdir(path):  # a file is in the way
                    raise self._refused(rel, exc) from exc
            except OSError as exc:  # the name is too long, and so on
                raise self._refused(rel, exc) from exc
        self.dirs.add(rel)

    def file(self, rel: str, src: Chunks, mode: int = FILE_MODE) -> None:
        """A regular file; `mode` is what the archive records (objects have none)."""
        if self.members is not None:
            if not self.members.wanted(rel):
                return self._skip(rel, src)
            src = self.members.checked(rel, src, self.limits.where)
        path = self._parent(rel)
        perm = EXEC_MODE if mode & 0o111 else FILE_MODE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm)
        except OSError as exc:
            raise self._refused(rel, exc) from exc
        try:
            with open(fd, "wb", closefd=True) as out:
                set_mode(fd, perm)  # open's mode goes through the umask
                written = flushed = 0
                while chunk := src.read(COPY_CHUNK):
                    self.limits.add(len(chunk))
                    out.write(chunk)
                    written += len(chunk)
                    if written - flushed >= WRITEBACK_EVERY:
                        out.flush()
                        start_writeback(fd, flushed, written - flushed)
                        flushed = written
        except OSError as exc:
            raise_space(exc, self.limits.where)
            raise

    def adopt(self, rel: str, src: Path) -> None:
        """A file already complete on this filesystem (a sliced download), moved in."""
        if self.members is not None:
            self.members.check_file(rel, src, self.limits.where)
        path = self._parent(rel)
        self.limits.add(src.stat().st_size)
        if os.path.lexists(path):  # rename would replace it: refuse as O_EXCL does
            raise self._refused(rel, FileExistsError(errno.EEXIST, "File exists"))
        set_mode(str(src), FILE_MODE)
        os.rename(src, path)

    def symlink(self, rel: str, target: str) -> None:
        if not self.wanted(rel):
            return self._skip(rel)
        if not target or "\x00" in target:
            raise VersionRejected(f"{self.limits.where}: link {rel!r} has an empty or NUL target")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise VersionRejected(
                f"{self.limits.where}: link {rel!r} -> {target!r} leaves the version folder"
            )
        path = self._parent(rel)
        try:
            os.symlink(target, path)
        except OSError as exc:
            raise self._refused(rel, exc) from exc
        self.links.append((rel, target))

    def hardlink(self, rel: str, target_rel: str) -> None:
        if not self.wanted(rel) or target_rel in self.skipped:
            return self._skip(rel)
        target = self.root / target_rel
        parents = target_rel.split("/")[:-1]
        via_link = any(
            os.path.islink(self.root.joinpath(*parents[: i + 1])) for i in range(len(parents))
        )
        if via_link or not os.path.isfile(target) or os.path.islink(target):
            raise VersionRejected(
                f"{self.limits.where}: hard link {rel!r} -> {target_rel!r} has no target "
                "inside the version folder"
            )
        path = self._parent(rel)
        try:
            os.link(target, path)
        except OSError as exc:
            raise self._refused(rel, exc) from exc

    def check_links(self) -> None:
        """Once every member is in: each link resolves inside the root, whatever the order."""
        for rel, target in self.links:
            _check_link(self.root, rel, target, self.limits.where)


def _check_link(top: Path, rel: str, target: str, where: str) -> None:
    """Refuse a link whose resolution from its folder ever steps above `top`.

    Checked component by component on the finished tree, because `s -> .` plus `t -> s/..`
    is harmless to a lexical check of each link alone, yet `t` is the parent of `top`.
    After passing through another link the path may only go down: that link was checked
    itself, and what lies below a folder inside `top` is inside `top`.
    """
    stack = rel.split("/")[:-1]
    through_link = False
    ok = not target.startswith("/")
    for part in target.split("/") if ok else ():
        if part in ("", "."):
            continue
        if part == "..":
            if not stack or through_link:
                ok = False
                break
            stack.pop()
        else:
            stack.append(part)
            through_link = through_link or os.path.islink(top.joinpath(*stack))
    if not ok:
        raise VersionRejected(f"{where}: link {rel!r} -> {target!r} leaves the version folder")


def _check_links(top: Path, where: str) -> None:
    for dirpath, dirnames, filenames in os.walk(top):  # never follows links
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                rel = os.path.relpath(path, top).replace(os.sep, "/")
                _check_link(top, rel, os.readlink(path), where)


def content_root(staged: Path, where: str, version: str | None) -> Path:
    """The folder that becomes the version: an archive's lone top folder named as its
    version (the seed's `0002/` inside `0002.zip`, or `2/`: the same number), else the root.

    Any other lone folder is content: Triton's `model.onnx/`, a SavedModel's `variables/`,
    a folder form's objects (`version` None), which a model server looks for where the
    upload put them. Links are checked against the folder that is published: `0002/ln ->
    ../0001/x` stays inside the archive but would point at another version once `0002/` is
    the version.
    """
    children = list(staged.iterdir())
    if not children:
        raise VersionRejected(f"{where}: the archive is empty")
    top = staged
    if len(children) == 1 and not children[0].is_symlink() and children[0].is_dir():
        lone = children[0]
        if not any(lone.iterdir()):
            raise VersionRejected(f"{where}: the archive holds only an empty folder")
        if version is not None and _names_version(lone.name, version):
            top = lone
    _check_links(top, where)
    return top


def _names_version(name: str, version: str) -> bool:
    """`0002` or `2` for version `0002`: the spelling, or the same number."""
    digits = name.isascii() and name.isdigit()  # layout's VERSION_RE, [0-9]+
    return name == version or (digits and int(name) == int(version))
