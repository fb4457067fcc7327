"""The zip format: extracted while it downloads (zipstream), else from a seekable copy; and
the extracted size its central directory states, read from the end of the object.
"""

from __future__ import annotations

import contextlib
import lzma
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats import zipstream
from gcs_model_sync.formats.extract import Writer, member_path
from gcs_model_sync.formats.extractor import ArchiveSource
from gcs_model_sync.logs import log

TAIL = 256 * 1024  # the end of a zip read to learn its size: EOCD, zip64 records, central dir
_EOCD, _ZIP64_LOCATOR, _ZIP64_EOCD = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_CENTRAL = zipstream.CENTRAL


class ZipExtractor:
    """Streams when the local headers allow it; zips that need random access (written to a
    pipe with stored members, bzip2 or lzma) start over from a seekable copy."""

    def extract(self, source: ArchiveSource, writer: Writer) -> Writer:
        where = writer.limits.where
        try:
            source.stream(lambda content: zipstream.extract(content, writer, where))
            return writer
        except zipstream.Unstreamable as exc:
            log.debug("%s: %s; extracting from a local copy", where, exc)
        writer = writer.fresh()
        with source.local() as archive:
            extract_zip(archive, writer, where)
        return writer

    def tail_start(self, size: int) -> int | None:
        return None if size < 22 else max(0, size - TAIL)  # 22: the end record alone

    def stated_size(self, tail: bytes) -> int | None:
        return stated_size(tail)


ZIP = ZipExtractor()


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


def stated_size(tail: bytes) -> int | None:
    """The total uncompressed size the central directory at the end of `tail` (the last
    bytes of a zip) states, or None when `tail` does not hold all of it."""
    at = len(tail)
    while (at := tail.rfind(_EOCD, 0, at)) >= 0:
        if at + 22 <= len(tail):
            comment = struct.unpack_from("<H", tail, at + 20)[0]
            if at + 22 + comment == len(tail):
                return _central_total(tail, at)
    return None


def _central_total(tail: bytes, eocd: int) -> int | None:
    count, cd_size = struct.unpack_from("<HI", tail, eocd + 10)
    end = eocd
    locator = eocd - 20
    if locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR:
        record = locator - 56
        if record < 0 or tail[record : record + 4] != _ZIP64_EOCD:  # extensible data
            record = tail.rfind(_ZIP64_EOCD, 0, locator)
            if record < 0:
                return None
        count, cd_size = struct.unpack_from("<QQ", tail, record + 32)
        end = record
    elif count == 0xFFFF or cd_size == 0xFFFFFFFF:
        return None  # zip64 values without their record
    pos = end - cd_size
    if pos < 0:
        return None
    total = 0
    for _ in range(count):
        if pos + 46 > end or tail[pos : pos + 4] != _CENTRAL:
            return None
        usize, nlen, xlen, clen = struct.unpack_from("<IHHH", tail, pos + 24)
        if usize == 0xFFFFFFFF:
            found = _zip64_usize(tail[pos + 46 + nlen : pos + 46 + nlen + xlen])
            if found is None:
                return None
            usize = found
        total += usize
        pos += 46 + nlen + xlen + clen
    return total if pos == end else None


def _zip64_usize(extra: bytes) -> int | None:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        if tag == 1 and size >= 8:
            return int(struct.unpack_from("<Q", extra, i + 4)[0])
        i += 4 + size
    return None
