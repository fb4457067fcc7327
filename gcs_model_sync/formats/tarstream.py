"""Extract a tar or tar.gz while it downloads, so no archive copy touches disk.

tarfile's stream mode copies every byte several times under the GIL (joins and slices in its
_Stream, then a buffered reader per member): on W1's tar.gz that was half the CPU of a pass and
it starved the other staging threads. Here each 512-byte header is still parsed by tarfile's
own `TarInfo.frombuf` (checksum, base-256 numbers, ustar prefix, old GNU and V7 quirks); GNU
long names and pax records are applied on top; and member bytes reach the Writer as views of
the chunks the stream produced, never copied in Python.
"""

from __future__ import annotations

import tarfile
import zlib
from typing import NamedTuple

from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats.extract import Writer, member_path
from gcs_model_sync.formats.extractor import ArchiveSource
from gcs_model_sync.formats.stream import COPY_CHUNK, Gunzip, Readable, Stream

BLOCK = tarfile.BLOCKSIZE
ZERO_BLOCK = bytes(BLOCK)
META_LIMIT = 1024 * 1024  # a long name or pax header larger than this is not a model's
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_SPECIAL = (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE)
_PAX = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)


class TarExtractor:
    """A tar, or a tar.gz (`gz`), extracted as it arrives: one sequential pass, whatever
    brings the bytes (a big archive's arrive by parallel ranges ahead of it). A tar states
    no total size up front (its headers are spread through it)."""

    def __init__(self, gz: bool) -> None:
        self.gz = gz

    def extract(self, source: ArchiveSource, writer: Writer) -> Writer:
        where = writer.limits.where
        source.stream(lambda content: extract(content, writer, where, gz=self.gz))
        return writer

    def tail_start(self, size: int) -> int | None:
        return None

    def stated_size(self, tail: bytes) -> int | None:
        return None


TAR, TGZ = TarExtractor(gz=False), TarExtractor(gz=True)


class _Member:
    """A member's bytes as views; what the Writer does not read is skipped by the caller."""

    def __init__(self, inp: Stream, size: int) -> None:
        self.inp, self.left = inp, size

    def read(self, size: int = -1, /) -> memoryview | bytes:
        if not self.left:
            return b""
        view = self.inp.view(min(self.left, COPY_CHUNK if size < 0 else size))
        self.left -= len(view)
        return view


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _meta(inp: Stream, info: tarfile.TarInfo, where: str) -> bytes:
    if info.size > META_LIMIT:
        raise VersionRejected(f"{where}: tar extended header of {info.size} bytes is too large")
    return inp.exact(_padded(info.size))[: info.size]


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(raw: bytes, where: str) -> dict[str, str]:
    """pax records: `LEN KEY=VALUE\\n`, LEN counting the whole record."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(raw) and raw[pos] != 0:
        space = raw.find(b" ", pos)
        try:
            length = int(raw[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = raw[space + 1 : pos + length]
        if length <= 0 or pos + length > len(raw) or not record.endswith(b"\n"):
            raise VersionRejected(f"{where}: corrupt pax header in tar archive")
        key, eq, value = record[:-1].partition(b"=")
        if not eq:
            raise VersionRejected(f"{where}: corrupt pax header in tar archive")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    if any(key.startswith("GNU.sparse.") for key in records):
        raise VersionRejected(f"{where}: sparse tar members are not supported")
    return records


def _size(records: dict[str, str], info: tarfile.TarInfo, where: str) -> int:
    if "size" not in records:
        return info.size
    text = records["size"]
    if not text.isdigit():
        raise VersionRejected(f"{where}: corrupt pax size {text!r} in tar archive")
    return int(text)


def extract(stream: Readable, writer: Writer, where: str, gz: bool = False) -> None:
    """Extract every member through `writer`, then read the stream to its end.

    Only a zero block where the next header would be ends the archive: a stream that stops
    there, or a damaged header, is a truncated or corrupt archive, not a short one.
    """
    try:
        inp = Stream(Gunzip(stream) if gz else stream, f"{where}: truncated tar archive")
        _members(inp, writer, where)
        writer.check_links()
        inp.drain()
    except (zlib.error, EOFError) as exc:
        raise VersionRejected(f"{where}: corrupt or truncated tar archive ({exc})") from exc


def _members(inp: Stream, writer: Writer, where: str) -> None:
    global_pax: dict[str, str] = {}
    pax: dict[str, str] = {}
    long_name = long_link = None
    while True:
        at = inp.offset
        if not inp.more():
            raise VersionRejected(
                f"{where}: truncated or corrupt tar archive (no end-of-archive block after the "
                f"last member, at byte {at})"
            )
        block = inp.exact(BLOCK)
        if block == ZERO_BLOCK:
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise VersionRejected(f"{where}: corrupt tar header at byte {at} ({exc})") from exc
        if info.size < 0:  # base-256 fields can say so
            raise VersionRejected(f"{where}: corrupt tar header at byte {at} (negative size)")
        kind = info.type
        if kind == tarfile.GNUTYPE_LONGNAME:
            long_name = _text(_meta(inp, info, where))
            continue
        if kind == tarfile.GNUTYPE_LONGLINK:
            long_link = _text(_meta(inp, info, where))
            continue
        if kind in _PAX:
            pax = _pax(_meta(inp, info, where), where)
            continue
        if kind == tarfile.XGLTYPE:
            global_pax.update(_pax(_meta(inp, info, where), where))
            continue
        fields = {**global_pax, **pax}
        name = fields.get("path", long_name if long_name is not None else info.name)
        linkname = fields.get("linkpath", long_link if long_link is not None else info.linkname)
        size = _size(fields, info, where)
        pax, long_name, long_link = {}, None, None
        _member(inp, writer, where, _Header(kind, name, linkname, size, info.mode))


class _Header(NamedTuple):
    """A member's header, extended headers (GNU long names, pax records) applied."""

    kind: bytes
    name: str
    linkname: str
    size: int
    mode: int


def _member(inp: Stream, writer: Writer, where: str, header: _Header) -> None:
    kind, name, linkname, size, mode = header
    rel = member_path(name, where)
    if kind in _REGULAR:
        if rel is None:
            inp.skip(_padded(size))
            return
        member = _Member(inp, size)
        writer.file(rel, member, mode)
        inp.skip(member.left + _padded(size) - size)
    elif rel is None:
        return
    elif kind == tarfile.DIRTYPE:
        writer.mkdir(rel)
    elif kind == tarfile.SYMTYPE:
        writer.symlink(rel, linkname)
    elif kind == tarfile.LNKTYPE:
        writer.hardlink(rel, member_path(linkname, where) or "")
    elif kind in _SPECIAL:
        raise VersionRejected(f"{where}: member {rel!r} is a device, fifo or other special file")
    elif kind == tarfile.GNUTYPE_SPARSE:
        raise VersionRejected(f"{where}: member {rel!r} is sparse, which is not supported")
    else:
        raise VersionRejected(f"{where}: member {rel!r} has unsupported tar type {kind!r}")
