"""Object reads: one generation's bytes, streamed, resumed after a reset, and checked.

Reads use the listing's authorized session directly, so that a read can stream, resume at
an offset after a reset, and be checked against the listed crc32c/md5 while the bytes go
by. An object stored gzip-encoded (`gsutil cp -Z`) is decoded as it streams.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import zlib
from typing import TYPE_CHECKING
from urllib.parse import quote

from gcs_model_sync import retry
from gcs_model_sync.errors import (
    AccessDenied,
    ChecksumMismatch,
    Interrupted,
    ObjectChanged,
    RemoteError,
    SyncError,
    TransientError,
    VersionRejected,
)
from gcs_model_sync.formats import stream
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.logs import event, log
from gcs_model_sync.source import auth, checksum
from gcs_model_sync.source.access import Access
from gcs_model_sync.source.explain import error_message, hint, plain, raise_explained

if TYPE_CHECKING:
    import requests

CHUNK = 1024 * 1024
COUNT_EVERY = 4 * CHUNK  # progress and metrics lag a read by at most this


class ObjectReader:
    """A read of one object generation in chunks that resumes after resets and checks size
    and crc32c (or md5) at EOF, raising ChecksumMismatch instead of returning bad bytes.

    A reader of a byte range (`start`, `end`) resumes the same way but checks nothing: the
    caller checksums the range itself and the whole object from its ranges. Each open response
    holds one of the process's connections, and every byte read counts against --bwlimit.
    """

    def __init__(
        self, access: Access, obj: RemoteObject, start: int = 0, end: int | None = None
    ) -> None:
        self._access = access
        self.obj = obj
        self.offset = start
        self.end = obj.size if end is None else end
        self._ranged = start > 0 or self.end < obj.size
        self._resp: requests.Response | None = None
        self._crc = 0 if obj.crc32c and not self._ranged else None
        whole_md5 = not obj.crc32c and obj.md5 and not self._ranged
        self._md5 = hashlib.md5(usedforsecurity=False) if whole_md5 else None
        self._verified = False
        self._uncounted = 0  # bytes read, added to the shared counters in batches

    @property
    def where(self) -> str:
        return f"gs://{self._access.source.bucket}/{self.obj.name}"

    def content(self) -> ObjectReader | GzipDecoded:
        """What the object holds, as `gcloud storage cp` and TF Serving give it: the stored
        bytes themselves (this reader: the plain path, no extra copy), or, for an object
        stored with `Content-Encoding: gzip` (`gsutil cp -Z`), those bytes decoded as they
        stream. Either way `verify()` checks size and checksum against the stored bytes.

        Any other Content-Encoding rejects the version before a byte is read: installing
        bytes that are still encoded is the silent failure this exists to prevent.
        """
        encoding = (self.obj.encoding or "").strip().lower()
        if encoding in ("", "identity"):
            return self
        if encoding in ("gzip", "x-gzip"):
            return GzipDecoded(self)
        raise VersionRejected(
            f"{self.where}: stored with Content-Encoding {self.obj.encoding!r}, which cannot "
            "be decoded (only gzip is supported)"
        )

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes (a chunk when negative); b"" once all were read and checked."""
        want = CHUNK if size < 0 else size
        if self.offset >= self.end:
            self._finish()
            return b""
        self._access.stop.check()
        data = self._access.retried(lambda: self._read_some(want), f"reading {self.where}")
        self.offset += len(data)
        self._uncounted += len(data)
        if self._uncounted >= COUNT_EVERY:
            self._count()
        self._access.link.took(len(data))
        if self._crc is not None:
            self._crc = checksum.extend(self._crc, data)
        elif self._md5:
            self._md5.update(data)
        return data

    def _read_some(self, want: int) -> bytes:
        try:
            if self._resp is None:
                self._open()
                assert self._resp is not None
            data: bytes = self._resp.raw.read(
                min(want, self.end - self.offset), decode_content=False
            )
        except SyncError:
            raise  # already explained (the request's status, its credentials)
        except Exception as e:
            if not retry.is_transient(e, streaming=True):
                raise
            self._drop()
            raise TransientError(f"{self.where}: {plain(e)}") from e
        if not isinstance(data, bytes) or not data:  # the body ended early: resume from here
            self._drop()
            raise TransientError(f"{self.where}: body ended at byte {self.offset}")
        return data

    def _open(self) -> None:
        connections = self._access.link.connections
        connections.acquire()
        try:
            self._resp = request(self._access, self.obj, self.offset, self.end)
        except BaseException:
            connections.release()
            raise
        if self.offset and self._resp.status_code == 200:
            self._skip_to_offset(self._resp)

    def _skip_to_offset(self, resp: requests.Response) -> None:
        """`Range: bytes=OFFSET-` answered 200 with the whole body (a proxy or cache that
        ignores ranges): read this object again from byte 0, discarding the bytes before
        OFFSET. The consumer already has those bytes (a streaming extraction or a file
        half-written), and the checksum already covers them, so appending the whole body
        would duplicate them and restarting the consumer is not possible; what follows
        OFFSET is then checked and delivered exactly once, as after a 206.
        """
        left = self.offset
        while left:
            self._access.stop.check()
            junk = resp.raw.read(min(CHUNK, left), decode_content=False)
            if not isinstance(junk, bytes) or not junk:
                break  # too short: the caller's read sees the end and resumes again
            left -= len(junk)

    def _finish(self) -> None:
        if self._verified:
            return
        self._drop()
        where = self.where
        if self._ranged:
            self._verified = True
            return
        if self.offset != self.obj.size:
            raise ChecksumMismatch(f"{where}: got {self.offset} bytes, listed {self.obj.size}")
        if self._crc is not None and checksum.b64(self._crc) != self.obj.crc32c:
            raise ChecksumMismatch(f"{where}: crc32c mismatch, content not published")
        if self._md5 and base64.b64encode(self._md5.digest()).decode() != self.obj.md5:
            raise ChecksumMismatch(f"{where}: md5 mismatch, content not published")
        self._verified = True

    def verify(self) -> None:
        """Drain whatever the consumer did not need, then check the checksum."""
        while self.read(CHUNK):
            pass
        self._finish()

    def _count(self) -> None:
        """Add what was read to the shared counters: batched, since 16 readers taking their
        lock for every chunk spent more time on it than on the bytes."""
        self._access.counters.add(nbytes=self._uncounted)
        self._uncounted = 0

    def _drop(self) -> None:
        self._count()
        if self._resp is not None:
            self._resp.close()
            self._resp = None
            self._access.link.connections.release()

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GzipDecoded:
    """An object stored with `Content-Encoding: gzip`, decoded as its stored bytes stream by.

    stream.Gunzip returns at most `size` decoded bytes per read, so a gzip bomb costs no
    memory (and what is written counts against --max-version-size), and b"" only at the true
    end, after the stored bytes were read to their end and checked. A body that does not
    decode is first checked as stored: damage in transit is a ChecksumMismatch (retried),
    intact bytes that are not gzip reject the version, naming the object.
    """

    def __init__(self, reader: ObjectReader) -> None:
        self.reader = reader
        self._gunzip = stream.Gunzip(reader)

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._gunzip.read(size)
        except (zlib.error, EOFError) as exc:
            self.reader.verify()
            raise VersionRejected(
                f"{self.reader.where}: stored with Content-Encoding gzip but the body does "
                f"not decode ({exc})"
            ) from exc

    def verify(self) -> None:
        """Decode to the end (gzip's own CRC-32 and length are checked there), then check the
        stored bytes' size and checksum."""
        while self.read(CHUNK):
            pass
        self.reader.verify()


def request(
    access: Access, obj: RemoteObject, offset: int, end: int | None = None
) -> requests.Response:
    """The object's bytes from `offset` to `end` (exclusive; None: to its end)."""
    url = (
        f"{access.base}/download/storage/v1/b/{quote(access.source.bucket, safe='')}"
        f"/o/{quote(obj.name, safe='')}?{access.read_query}&generation={obj.generation}"
    )
    headers = {"Accept-Encoding": "gzip"}  # never transcode: checksums are of stored bytes
    if end is not None and end < obj.size:
        headers["Range"] = f"bytes={offset}-{end - 1}"
    elif offset:
        headers["Range"] = f"bytes={offset}-"
    access.counters.add(reads=1)
    where = f"gs://{access.source.bucket}/{obj.name}"
    if log.isEnabledFor(logging.DEBUG):  # one request per object: build nothing unasked
        event(
            logging.DEBUG,
            "object_read",
            f"reading {where} (generation {obj.generation}) from byte {offset}",
            object=where,
            offset=offset,
        )
    try:
        resp: requests.Response = access.session.get(
            url, headers=headers, stream=True, timeout=(10, access.config.request_timeout)
        )
    except Exception as exc:
        raise_explained(exc, f"reading {where}", access.base)
    status = resp.status_code
    if status in (200, 206):
        return resp
    detail = error_message(resp)
    resp.close()
    if status == 404:
        raise ObjectChanged(
            f"{where}: generation {obj.generation} is gone (changed or deleted mid-pass)"
        )
    if status in (401, 403):
        raise AccessDenied(
            f"{where}: permission storage.objects.get denied ({auth.who(access.session)})"
            f"{access.unsent}"
        )
    if retry.transient_status(status):
        raise TransientError(f"{where}: HTTP {status}: {detail}")
    raise RemoteError(f"{where}: HTTP {status}: {detail}{hint(detail)}")


def tail(access: Access, obj: RemoteObject, start: int) -> bytes | None:
    """The object's bytes from `start` to its end in one ranged request (a zip's central
    directory); None when a proxy ignores ranges or on an error: the caller does without."""

    def read() -> bytes | None:
        access.link.connections.acquire()
        try:
            resp = request(access, obj, start)
            try:
                return bytes(resp.content) if not start or resp.status_code == 206 else None
            finally:
                resp.close()
        finally:
            access.link.connections.release()

    try:
        return access.retried(read, f"reading the end of gs://{access.source.bucket}/{obj.name}")
    except Interrupted:
        raise
    except SyncError:
        return None
