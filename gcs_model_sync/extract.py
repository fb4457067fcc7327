"""Safe, streaming extraction of one version archive into a staging folder.

Every member is checked before a byte is written: no absolute paths, no `..`, no links
that leave the version folder, no devices or fifos, no duplicate files, and a cap on the
total extracted size (zip bombs). Any problem raises VersionRejected naming the object.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import lzma
import os
import posixpath
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from gcs_model_sync.errors import InsufficientSpace, VersionRejected
from gcs_model_sync.layout import VERSION_RE

COPY_CHUNK = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Chunks(Protocol):
    """What Writer.file copies from: bytes, or views of a buffer that are never copied."""

    def read(self, size: int = -1, /) -> bytes | memoryview: ...


class Stream:
    """An archive as it downloads: member bytes as views of the chunks the source produced
    (they reach write() uncopied, so the GIL is free for the other staging threads), headers
    as exact reads, and push-back of bytes read past the end of a member."""

    def __init__(self, src: Readable, truncated: str) -> None:
        self.src = src
        self.truncated = truncated  # the error for an archive that stops too early
        self.chunk = memoryview(b"")
        self.pos = 0
        self.offset = 0  # archive bytes consumed, for messages

    def more(self) -> bool:
        """Is there anything left? Loads the next chunk once the current one is used up."""
        if self.pos < len(self.chunk):
            return True
        data = self.src.read(COPY_CHUNK)
        self.chunk, self.pos = memoryview(data), 0
        return bool(data)

    def read(self, n: int) -> memoryview:
        """Up to n bytes; empty at the end of the stream."""
        if not self.more():
            return self.chunk
        end = min(self.pos + n, len(self.chunk))
        view = self.chunk[self.pos : end]
        self.offset += end - self.pos
        self.pos = end
        return view

    def view(self, n: int) -> memoryview:
        """Between 1 and n bytes: the stream may not end here."""
        view = self.read(n)
        if not view:
            raise VersionRejected(f"{self.truncated} (the stream ends at byte {self.offset})")
        return view

    def exact(self, n: int) -> bytes:
        parts, left = [], n
        while left:
            view = self.view(left)
            parts.append(view)
            left -= len(view)
        return b"".join(parts)

    def skip(self, n: int) -> None:
        while n:
            n -= len(self.view(n))

    def peek(self, n: int) -> bytes:
        """Up to n bytes ahead, left unread; fewer only where the stream ends."""
        while len(self.chunk) - self.pos < n:
            data = self.src.read(COPY_CHUNK)
            if not data:
                break
            self.chunk, self.pos = memoryview(self.chunk[self.pos :].tobytes() + data), 0
        return self.chunk[self.pos : self.pos + n].tobytes()

    def unread(self, data: bytes) -> None:
        if data:
            self.chunk, self.pos = memoryview(data + self.chunk[self.pos :]), 0
            self.offset -= len(data)

    def drain(self) -> None:
        """Read to the very end (a tar.gz's gzip trailer is checked there)."""
        while self.src.read(COPY_CHUNK):
            pass


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


class Writer:
    """Creates files and folders under `root`, refusing anything that would land outside.

    Files are 0644 (0755 if executable) and folders 0755 whatever the process umask.
    Durability is not its job: the engine syncs each batch of staged versions at once.
    """

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.limits = limits
        self.dirs: set[str] = set()
        self.links: list[tuple[str, str]] = []
        root.mkdir(parents=True, exist_ok=True)
        set_mode(root, DIR_MODE)  # it may become the version folder itself

    def _parent(self, rel: str) -> Path:
        parent = posixpath.dirname(rel)
        if parent and parent not in self.dirs:
            self.mkdir(parent)
        return self.root / rel

    def _refused(self, rel: str, exc: OSError) -> VersionRejected:
        """The file system will not take this member: a name clash, too long, and so on."""
        _raise_space(exc, self.limits.where)
        if exc.errno not in _MEMBER_ERRNOS:
            raise exc  # a problem of this disk, not of the archive
        if isinstance(exc, FileExistsError):
            return VersionRejected(f"{self.limits.where}: duplicate member {rel!r}")
        why = exc.strerror
        return VersionRejected(f"{self.limits.where}: cannot create member {rel!r} ({why})")

    def mkdir(self, rel: str) -> None:
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
            _raise_space(exc, self.limits.where)
            raise

    def adopt(self, rel: str, src: Path) -> None:
        """A file already complete on this filesystem (a sliced download), moved in."""
        path = self._parent(rel)
        self.limits.add(src.stat().st_size)
        if os.path.lexists(path):  # rename would replace it: refuse as O_EXCL does
            raise self._refused(rel, FileExistsError(errno.EEXIST, "File exists"))
        set_mode(str(src), FILE_MODE)
        os.rename(src, path)

    def symlink(self, rel: str, target: str) -> None:
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


def _raise_space(exc: OSError, where: str) -> None:
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise InsufficientSpace(f"{where}: no space left on the destination filesystem") from exc


class _Decoded:
    """A zip member's bytes. Failing to locate or decompress them means a corrupt archive:
    a bad header offset makes zipfile seek before the start (EINVAL), and bzip2 and lzma
    raise their own errors rather than BadZipFile."""

    _ERRORS = (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> None:
        self.where = where
        with self._corrupt():
            self.src = zf.open(info)

    @contextlib.contextmanager
    def _corrupt(self) -> Iterator[None]:
        try:
            yield
        except self._ERRORS as exc:
            raise VersionRejected(
                f"{self.where}: corrupt or unsupported zip archive ({exc})"
            ) from exc

    def read(self, size: int = -1, /) -> bytes:
        with self._corrupt():
            return self.src.read(size)

    def __enter__(self) -> _Decoded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.src.close()


def extract_zip(archive: Path, writer: Writer, where: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            declared = sum(i.file_size for i in infos)
            if declared > writer.limits.max_bytes:
                raise VersionRejected(
                    f"{where}: declares {declared} bytes, more than --max-version-size "
                    f"{writer.limits.max_bytes}"
                )
            for info in infos:
                rel = member_path(info.filename, where)
                if rel is None:
                    continue
                kind = stat.S_IFMT(info.external_attr >> 16)
                if info.flag_bits & 0x1:
                    raise VersionRejected(f"{where}: member {rel!r} is encrypted")
                if info.is_dir():
                    writer.mkdir(rel)
                elif kind == stat.S_IFLNK:
                    with _Decoded(zf, info, where) as src:
                        target = src.read()
                    writer.symlink(rel, target.decode("utf-8", "replace"))
                elif kind not in (0, stat.S_IFREG):
                    raise VersionRejected(f"{where}: member {rel!r} is not a regular file")
                else:
                    with _Decoded(zf, info, where) as src:
                        writer.file(rel, src, (info.external_attr >> 16) & 0o777)
            writer.check_links()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise VersionRejected(f"{where}: corrupt or unsupported zip archive ({exc})") from exc


_GZIP = 16 + zlib.MAX_WBITS  # zlib parses the gzip header and checks its CRC-32 and length


class Gunzip:
    """A gzip stream inflated in 1 MiB steps; zlib checks each member's trailer.

    gzip.GzipFile reads through an 8 KiB buffer and computes the CRC in a Python loop: on a
    1 GiB model that is most of the extraction's CPU. Concatenated members and zero padding
    are accepted, as gzip(1) does; anything else after the last member is an error.
    """

    def __init__(self, src: Readable) -> None:
        self._src = src
        self._d = zlib.decompressobj(_GZIP)
        self._input = b""  # compressed bytes read ahead of the current decompressor
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        want = COPY_CHUNK if size < 0 else size
        while not self._done:
            d = self._d
            if d.eof:  # checked first: CPython may leave the leftover in unconsumed_tail too
                self._next_member(d.unused_data + self._input)
                continue
            if d.unconsumed_tail:
                out = d.decompress(d.unconsumed_tail, want)
            else:
                data, self._input = self._input or self._src.read(COPY_CHUNK), b""
                if not data:
                    raise EOFError("compressed stream ended before its end-of-stream marker")
                out = d.decompress(data, want)
            if out:
                return out
        return b""

    def _next_member(self, rest: bytes) -> None:
        while len(rest := rest.lstrip(b"\0")) < 2:
            more = self._src.read(COPY_CHUNK)
            if not more:
                if rest:
                    raise zlib.error("trailing garbage after the gzip stream")
                self._done = True
                return
            rest += more
        if not rest.startswith(b"\x1f\x8b"):
            raise zlib.error("trailing garbage after the gzip stream")
        self._d = zlib.decompressobj(_GZIP)
        self._input = rest


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
    return name == version or (VERSION_RE.fullmatch(name) is not None and int(name) == int(version))
