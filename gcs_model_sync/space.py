"""Room on the destination's file system.

Workers staging versions at once share one budget per file system: each reserves the bytes
its version is expected to take, less what its partial downloads hold already, before it
writes any, and gives back the rest once its staging is complete or removed, so two workers
never both pass a check for space that only fits one. What a version is expected to take is
its stored size, or, for a zip whose end was read (only when a full disk may call for
deleting first, see prune.make_room), the extracted size its central directory states.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import os
import shutil
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from gcs_model_sync.errors import InsufficientSpace
from gcs_model_sync.layout import Form, RemoteObject
from gcs_model_sync.plan import Install
from gcs_model_sync.remote import Bucket

TAIL = 256 * 1024  # the end of a zip read to learn its size: EOCD, zip64 records, central dir
_EOCD, _ZIP64_LOCATOR, _ZIP64_EOCD, _CENTRAL = (
    b"PK\x05\x06",
    b"PK\x06\x07",
    b"PK\x06\x06",
    b"PK\x01\x02",
)


class NoRoom(InsufficientSpace):
    """The budget refused a version; `alone` says whether it would have fit had no other
    version been staged at the same time (then what it has on disk is worth keeping)."""

    def __init__(self, message: str, alone: bool) -> None:
        super().__init__(message)
        self.alone = alone


def _nothing() -> int:
    return 0


class Reservation:
    """Bytes promised to one version being staged. What it has written into staging and what
    its partial downloads hold on disk (kept from an earlier pass, or written in this one)
    count against it: those bytes take space already, and are not needed again."""

    def __init__(self, budget: Budget, need: int, on_disk: Callable[[], int] = _nothing) -> None:
        self.budget, self.need = budget, need
        self.written: Callable[[], int] = _nothing
        self.on_disk = on_disk

    @property
    def outstanding(self) -> int:
        return max(0, self.need - self.written() - self.on_disk())

    def release(self) -> None:
        self.budget._release(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class Budget:
    """The reservations held on one file system, checked against its free space under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[Reservation] = []

    def reserve(
        self,
        where: Path,
        need: int,
        keep_free: int,
        name: str,
        on_disk: Callable[[], int] = _nothing,
    ) -> Reservation:
        """Promise `need` bytes, less what `on_disk()` says the version holds already, or
        raise NoRoom."""
        with self._lock:
            reservation = Reservation(self, need, on_disk)
            lacking = reservation.outstanding
            free = shutil.disk_usage(where).free
            promised = sum(r.outstanding for r in self._held)
            if free - promised - lacking < keep_free:
                held = f", {promised} of them promised to versions being staged" if promised else ""
                had = need - lacking
                kept = f" (besides {had} in its partial downloads)" if had else ""
                raise NoRoom(
                    f"{name}: needs about {lacking} bytes{kept} but {free} are free{held} "
                    f"(keeping --min-free-space {keep_free}); version not installed",
                    alone=free - lacking >= keep_free,
                )
            self._held.append(reservation)
            return reservation

    def _release(self, reservation: Reservation) -> None:
        with self._lock:
            if reservation in self._held:
                self._held.remove(reservation)


_budgets: dict[int, Budget] = {}
_budgets_lock = threading.Lock()


def budget_for(path: Path) -> Budget:
    """The one budget of the file system holding `path`, shared by every worker."""
    dev = os.stat(path).st_dev
    with _budgets_lock:
        return _budgets.setdefault(dev, Budget())


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def tree_bytes(root: Path) -> int:
    """What removing `root` gives back: allocated blocks, links and folders included."""
    total = 0
    for dirpath, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
    return total


def with_stated_sizes(
    bucket: Bucket, installs: tuple[Install, ...], workers: int
) -> tuple[Install, ...]:
    """The installs, each zip with the extracted size its central directory states: one
    ranged read of up to 256 KiB per zip (folders and tars are unchanged: a folder's stored
    size is exact; a tar.gz states no total)."""
    zips = [i for i in installs if i.version.form is Form.ZIP and i.version.stated_size is None]
    if not zips:
        return installs
    with cf.ThreadPoolExecutor(min(workers, len(zips)), thread_name_prefix="size") as pool:
        sizes = dict(
            zip(
                (i.version.id for i in zips),
                pool.map(lambda i: zip_size(bucket, i.version.objects[0]), zips),
                strict=True,
            )
        )
    return tuple(
        dataclasses.replace(i, version=dataclasses.replace(i.version, stated_size=n))
        if (n := sizes.get(i.version.id)) is not None
        else i
        for i in installs
    )


def zip_size(bucket: Bucket, obj: RemoteObject) -> int | None:
    """What the zip extracts to, from its end; None when that cannot be told (a gzip-encoded
    object, a proxy that ignores Range, a central directory longer than the tail, an error:
    the stored size is used then, and the staging itself still stops on a full disk)."""
    if (obj.encoding or "").strip().lower() not in ("", "identity") or obj.size < 22:
        return None
    tail = bucket.tail(obj, max(0, obj.size - TAIL))
    return None if tail is None else stated_size(tail)


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
