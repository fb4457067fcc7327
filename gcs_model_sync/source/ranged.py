"""A big object read as parallel byte ranges, written in place into one file, resumable.

One stream to Cloud Storage carries a fraction of what a host can take, so an object of
--slice-threshold or more is cut into --slice-size ranges, each read on its own connection
(within the process's budget, see throttle.py) and pinned to the listed generation. Each
range keeps its own CRC-32C; the object's is combined from them, so the bytes are verified
without being read again.

The file and its record of which bytes are in it (partials.py) survive a pass that is
stopped, and the next pass reads only what is missing. Whatever the record claims, nothing
is used before the whole object's checksum matches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gcs_model_sync import diskio
from gcs_model_sync.errors import ChecksumMismatch
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.logs import event
from gcs_model_sync.source import checksum, partials
from gcs_model_sync.source.access import Access
from gcs_model_sync.source.partials import Slice
from gcs_model_sync.source.reads import ObjectReader

if TYPE_CHECKING:
    from gcs_model_sync.config import Config

CHUNK = 1024 * 1024  # what the consumer is handed at a time
# What a range reader takes from its socket at a time: small enough that 16 of them in flight
# stay far below the memory target, big enough that the per-read cost is noise.
READ = 256 * 1024
SAVE_EVERY = 1.0  # seconds between records of progress while ranges are read


# An archive read in slices is written to disk whole before it is extracted: one more write
# and read of every byte, which for many mid-size archives costs more than parallel ranges gain
# (20 x 50 MiB zips take longer sliced than streamed). Only big ones are sliced.
ARCHIVE_FACTOR = 8


def wanted(obj: RemoteObject, config: Config, archive: bool = False) -> bool:
    """Read in slices: big enough to gain from it, with a CRC-32C to verify the whole from its
    parts, and stored as it is served (ranges of gzip-stored bytes are not what decodes)."""
    threshold = config.slice_threshold * (ARCHIVE_FACTOR if archive else 1)
    return (
        obj.size > config.slice_size
        and obj.size >= threshold
        and bool(obj.crc32c)
        and (obj.encoding or "").strip().lower() in ("", "identity")
    )


def cut(size: int, slice_size: int) -> list[Slice]:
    return [Slice(s, min(s + slice_size, size)) for s in range(0, size, slice_size)]


class Download:
    """One object into `folder/<key>`, read by parallel ranges from what is not there yet.

    `start()` launches the readers; `read()` hands the bytes over in order as they land (an
    archive extracts while the rest arrives); `wait()` returns the verified file. `close()`
    stops the readers and records where each range got to; `discard()` removes it all.
    """

    def __init__(self, bucket: Access, obj: RemoteObject, folder: Path, slice_size: int) -> None:
        self.bucket = bucket
        self.obj = obj
        self.path = folder / partials.key(obj)
        self._record = folder / (partials.key(obj) + partials.RECORD)
        self._where = f"gs://{bucket.source.bucket}/{obj.name}"
        folder.mkdir(exist_ok=True)
        slices = partials.resumable(folder, obj)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if slices is None:
            slices = cut(obj.size, slice_size)
            os.ftruncate(self._fd, 0)  # a file with no record: nothing in it can be trusted
        os.ftruncate(self._fd, obj.size)  # sparse: the ranges fill it in place
        self.slices = slices
        self._check_resumed()
        self._cond = threading.Condition()
        self._next = 0  # the first slice no reader has taken
        self._first_open = 0  # slices before it are done: bytes before its start are in order
        self._waiting = False  # the consumer is waiting for bytes
        self._error: BaseException | None = None
        self._cancelled = False
        self._threads: list[threading.Thread] = []
        self._saved_at = time.monotonic()
        self._save_lock = threading.Lock()
        self._verified = False
        self.resumed = sum(s.got for s in self.slices)
        self._pos = 0

    # -- the record of progress ---------------------------------------------------------
    def _check_resumed(self) -> None:
        if damaged := partials.check(self._fd, self.slices, self.bucket.stop):
            event(
                logging.WARNING,
                "partial_damaged",
                f"{self._where}: {damaged} bytes kept from an earlier pass do not match what "
                "was recorded; reading them again",
                object=self.obj.name,
            )

    def _save(self) -> None:
        with self._save_lock:  # readers save in turn: one tmp file, one rename
            partials.save(self.path.parent, self.obj, self.slices)
            self._saved_at = time.monotonic()

    # -- readers ---------------------------------------------------------------------------
    def start(self) -> Download:
        pending = sum(1 for s in self.slices if not s.done)
        for _ in range(min(pending, self.bucket.link.connections.limit)):
            t = threading.Thread(target=self._reader, name="gcs-model-sync-slice", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _take(self) -> Slice | None:
        with self._cond:
            while self._next < len(self.slices):
                s = self.slices[self._next]
                self._next += 1
                if not s.done:
                    return s
            return None

    def _reader(self) -> None:
        try:
            while not self._cancelled and (s := self._take()) is not None:
                self._fill(s)
        except BaseException as exc:  # handed to the consumer, which raises it
            with self._cond:
                self._error = self._error or exc
                self._cancelled = True
                self._cond.notify_all()

    def _fill(self, s: Slice) -> None:
        with ObjectReader(self.bucket, self.obj, s.start + s.got, s.end) as reader:
            while not self._cancelled and (data := reader.read(READ)):
                try:
                    os.pwrite(self._fd, data, s.start + s.got)
                except OSError as exc:
                    diskio.raise_space(exc, self._where)
                    raise
                s.progress = (s.got + len(data), checksum.extend(s.crc, data))
                # Wake the consumer only when it may go on: it waits for the first
                # unfinished slice (reading in order) or for every slice to be done.
                if s.done or (self._waiting and self._first_open_slice() is s):
                    with self._cond:
                        self._cond.notify_all()
                if time.monotonic() - self._saved_at > SAVE_EVERY:
                    self._save()
        if s.done:
            diskio.start_writeback(self._fd, s.start, s.size)
            self._save()

    # -- the consumer ----------------------------------------------------------------------
    def _in_order(self) -> int:
        """How many bytes from the start are in the file (caller holds the lock)."""
        while self._first_open < len(self.slices) and self.slices[self._first_open].done:
            self._first_open += 1
        if self._first_open == len(self.slices):
            return self.obj.size
        s = self.slices[self._first_open]
        return s.start + s.got

    def _first_open_slice(self) -> Slice | None:
        i = self._first_open
        return self.slices[i] if i < len(self.slices) else None

    def _wait_for(self, offset: int) -> None:
        """Until the bytes before `offset` are in the file; a reader's failure is raised here.

        `_waiting` is set before the progress is read, and a reader sets progress before it
        reads `_waiting`: whichever comes second sees the other, so no wake-up is lost."""
        with self._cond:
            self._waiting = True
            try:
                while self._in_order() < offset and self._error is None:
                    self._cond.wait(0.2)
                    self.bucket.stop.check()
            finally:
                self._waiting = False
            if self._error is not None:
                raise self._error

    def read(self, size: int = -1, /) -> bytes:
        """The object's next bytes in order, as soon as they are in the file; b"" at the end,
        once the whole object is verified."""
        if self._pos >= self.obj.size:
            self.verify()
            return b""
        want = min(CHUNK if size < 0 else size, self.obj.size - self._pos)
        self._wait_for(self._pos + 1)
        with self._cond:
            ready = self._in_order() - self._pos
        data = os.pread(self._fd, min(want, ready), self._pos)
        self._pos += len(data)
        return data

    def verify(self) -> None:
        """Every range read, then the whole object's CRC-32C combined from theirs. A mismatch
        discards the file: a retry starts from nothing rather than from what was wrong."""
        if self._verified:
            return
        self._wait_for(self.obj.size)
        self._join()
        crc = self.slices[0].crc
        for s in self.slices[1:]:
            crc = checksum.combine(crc, s.crc, s.size)
        if checksum.b64(crc) != self.obj.crc32c:
            self.discard()
            raise ChecksumMismatch(f"{self._where}: crc32c mismatch, content not published")
        self._verified = True

    def wait(self) -> Path:
        """The whole object, verified, at `self.path`."""
        self.verify()
        return self.path

    def _join(self) -> None:
        for t in self._threads:
            while t.is_alive():
                t.join(0.2)
        self._threads = []

    def close(self) -> None:
        """Stop the readers; what they wrote stays, recorded, for the next pass."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
        self._join()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        if self.path.exists():
            with contextlib.suppress(OSError):
                self._save()

    def discard(self) -> None:
        """Remove the file and its record (the bytes are used, or not worth keeping)."""
        with self._cond:
            self._cancelled = True
        self._join()
        for p in (self.path, self._record):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def __enter__(self) -> Download:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
