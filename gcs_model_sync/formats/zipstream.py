"""Extract a zip while it downloads, from its local headers, so no archive copy touches disk.

The central directory sits at the end of a zip, so a stream reader walks the local headers
instead: each member's bytes are inflated, checked against its CRC-32 and size, and written
through the same safe Writer as every other form. The central directory is then read (it is
small) to cross-check the member list and to learn which members are symbolic links or
executables, which only it records. Zips that cannot be read this way (stored members with a
trailing data descriptor, bzip2/lzma) raise Unstreamable, and the caller falls back to a
seekable copy.
"""

from __future__ import annotations

import stat
import struct
import zlib

from gcs_model_sync.diskio import EXEC_MODE, set_mode
from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats.extract import Writer, member_path
from gcs_model_sync.formats.stream import COPY_CHUNK, Readable, Stream

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
END = (b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07")
DESCRIPTOR = b"PK\x07\x08"
NEXT = (LOCAL, CENTRAL, *END)  # what may follow a member's data descriptor
CENTRAL_LIMIT = 64 * 1024 * 1024  # a central directory larger than this is not a model
STORED, DEFLATED = 0, 8


class Unstreamable(Exception):
    """This zip needs random access; extract it from a file instead."""


class _Member:
    """A Readable over one member's uncompressed bytes, counting them and their CRC-32 for
    the checks at its end."""

    def __init__(self, inp: Stream, method: int, csize: int | None, where: str) -> None:
        self.inp, self.method, self.left, self.where = inp, method, csize, where
        self.d = zlib.decompressobj(-15) if method == DEFLATED else None
        self.got_crc, self.got = 0, 0
        self.consumed = 0  # compressed bytes, checked against a data descriptor
        self.done = False

    def read(self, size: int = -1, /) -> bytes | memoryview:
        want = COPY_CHUNK if size < 0 else size
        while not self.done:
            out = self._step(want)
            if out:
                self.got += len(out)
                self.got_crc = zlib.crc32(out, self.got_crc)
                return out
        return b""

    def _step(self, want: int) -> bytes | memoryview:
        d = self.d
        if d is not None and d.unconsumed_tail:
            return d.decompress(d.unconsumed_tail, want)
        if d is not None and d.eof:
            self.inp.unread(d.unused_data)
            self.consumed -= len(d.unused_data)
            self._finish()
            return b""
        if self.left == 0:
            if d is not None:
                raise VersionRejected(f"{self.where}: truncated deflate data in zip member")
            self._finish()
            return b""
        n = COPY_CHUNK if self.left is None else min(COPY_CHUNK, self.left)
        data = self.inp.read(n)
        if not data:
            raise VersionRejected(f"{self.where}: truncated zip archive")
        self.consumed += len(data)
        if self.left is not None:
            self.left -= len(data)
        return data if d is None else d.decompress(data, want)

    def _finish(self) -> None:
        self.done = True
        if self.left:  # compressed bytes after the end of the deflate stream
            raise VersionRejected(f"{self.where}: zip member has trailing data")


def extract(stream: Readable, writer: Writer, where: str) -> None:
    """Walk local headers; then check the central directory and restore symbolic links."""
    inp = Stream(stream, f"{where}: truncated zip archive")
    seen: dict[str, _Sums] = {}  # to cross-check the central directory
    try:
        while True:
            sig = inp.exact(4)
            if sig == LOCAL:
                _local_member(inp, writer, where, seen)
            elif sig == CENTRAL:
                inp.unread(sig)
                break
            elif sig in END and not seen:
                raise VersionRejected(f"{where}: the archive is empty")
            elif not seen:
                raise Unstreamable("no local header at the start (prefixed or not a zip)")
            else:
                raise VersionRejected(f"{where}: corrupt zip archive (bad signature {sig!r})")
        _central(inp, writer, where, seen)
    except zlib.error as exc:
        raise VersionRejected(f"{where}: corrupt zip member ({exc})") from exc


_Sums = tuple[int, int, int]  # a member's CRC-32, compressed size, uncompressed size


def _local_member(inp: Stream, writer: Writer, where: str, seen: dict[str, _Sums]) -> None:
    _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen = struct.unpack(
        "<HHHHHIIIHH", inp.exact(26)
    )
    raw_name = inp.exact(nlen)
    extra = inp.exact(xlen)
    name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if flags & 0x1:
        raise VersionRejected(f"{where}: member {name!r} is encrypted")
    if method not in (STORED, DEFLATED):
        raise Unstreamable(f"compression method {method}")
    descriptor = bool(flags & 0x8)
    if descriptor and method == STORED:
        raise Unstreamable("stored member with a data descriptor")
    zip64 = csize == 0xFFFFFFFF or usize == 0xFFFFFFFF
    if zip64:
        usize, csize = _zip64_sizes(extra, usize, csize, where)
    rel = member_path(name, where)
    member = _Member(inp, method, None if descriptor else csize, where)
    if rel is None or name.endswith("/"):
        if rel is not None:
            writer.mkdir(rel)
        while member.read(COPY_CHUNK):
            pass
    else:
        writer.file(rel, member)
    if descriptor:
        described = _descriptor(inp, zip64, member.consumed, member.got)
        if described is None:
            raise VersionRejected(
                f"{where}: member {name!r}: its data descriptor does not match its "
                f"{member.consumed} compressed and {member.got} uncompressed bytes"
            )
        crc, usize = described, member.got
    if member.got_crc != crc or member.got != usize:
        raise VersionRejected(f"{where}: member {name!r} fails its CRC-32 or size check")
    seen[name] = (crc, member.consumed, member.got)


def _zip64_sizes(extra: bytes, usize: int, csize: int, where: str) -> tuple[int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[i : i + 4])
        body = extra[i + 4 : i + 4 + size]
        if tag == 0x0001:
            values = list(struct.unpack(f"<{len(body) // 8}Q", body[: len(body) // 8 * 8]))
            if usize == 0xFFFFFFFF and values:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            return usize, csize
        i += 4 + size
    raise VersionRejected(f"{where}: zip64 member without its sizes")


def _descriptor(inp: Stream, zip64: bool, csize: int, usize: int) -> int | None:
    """Read the data descriptor after a member and return its CRC-32; None (and nothing
    read) when no reading of it gives the sizes the member was counted to have.

    Its signature is optional, and its sizes take 4 bytes each, or 8 in zip64 form. APPNOTE
    wants the zip64 form only after a local zip64 extra field, but Go's archive/zip and Java
    write it after any member over 4 GiB without one. So every reading is tried: the one
    whose sizes match wins; if two do (an empty member's 8-byte sizes read as 4-byte ones
    match too), the one followed by a header.
    """
    ahead = inp.peek(4 + 20 + 4)
    starts = (4, 0) if ahead[:4] == DESCRIPTOR else (0,)  # a CRC-32 may look like the signature
    forms = ((20, "<IQQ"), (12, "<III")) if zip64 else ((12, "<III"), (20, "<IQQ"))
    best: tuple[int, int] | None = None  # (length, CRC-32) of a match not followed by a header
    for start in starts:
        for length, fmt in forms:
            end = start + length
            if len(ahead) < end:
                continue
            crc: int
            crc, c, u = struct.unpack(fmt, ahead[start:end])
            if c != csize or u != usize:
                continue
            if ahead[end : end + 4] in NEXT:
                inp.skip(end)
                return crc
            best = best or (end, crc)
    if best is None:
        return None
    inp.skip(best[0])
    return best[1]


def _central(inp: Stream, writer: Writer, where: str, seen: dict[str, _Sums]) -> None:
    """Cross-check names, CRCs and sizes; turn members the directory marks as links into
    links, and give executables their mode (only the directory records either)."""
    listed: set[str] = set()
    total = 0
    while True:
        sig = inp.exact(4)
        if sig != CENTRAL:
            break
        fixed = inp.exact(42)
        total += 46
        (
            _vm,
            _vn,
            flags,
            _m,
            _t,
            _d,
            crc,
            csize,
            usize,
            nlen,
            xlen,
            clen,
            _disk,
            _ia,
            ext_attr,
            _off,
        ) = struct.unpack("<HHHHHHIIIHHHHHII", fixed)
        name = inp.exact(nlen).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = inp.exact(xlen)
        inp.exact(clen)
        total += nlen + xlen + clen
        if total > CENTRAL_LIMIT:
            raise VersionRejected(f"{where}: zip central directory is unreasonably large")
        if 0xFFFFFFFF in (csize, usize):
            usize, csize = _zip64_sizes(extra, usize, csize, where)
        if seen.get(name) != (crc, csize, usize):
            raise VersionRejected(f"{where}: central directory does not match member {name!r}")
        listed.add(name)
        kind = stat.S_IFMT(ext_attr >> 16)
        rel = member_path(name, where)
        if rel is None or kind == stat.S_IFDIR or rel in writer.skipped:
            continue
        if kind in (0, stat.S_IFREG):
            if ext_attr >> 16 & 0o111 and not name.endswith("/"):  # written 0644: a local
                path = writer.root / rel  # header has no mode (a link: a name listed twice)
                if not path.is_symlink():
                    set_mode(path, EXEC_MODE)
            continue
        if kind != stat.S_IFLNK:
            raise VersionRejected(f"{where}: member {rel!r} is not a regular file")
        path = writer.root / rel
        if path.is_symlink() or not path.is_file():
            raise VersionRejected(f"{where}: link {rel!r} is not a file in the local headers")
        target = path.read_bytes().decode("utf-8", "replace")
        path.unlink()
        writer.symlink(rel, target)
    if listed != set(seen):
        raise VersionRejected(f"{where}: central directory and local headers disagree")
