"""Room on the destination's file system.

Workers staging versions at once share one budget per file system: each reserves the bytes
its version is expected to take, less what its partial downloads hold already, before it
writes any, and gives back the rest once its staging is complete or removed, so two workers
never both pass a check for space that only fits one. What a version is expected to take is
its stored size, or, for an archive whose end was read (only when a full disk may call for
deleting first, see room.make_room), the extracted size that end states (a zip's central
directory: its format says, see archives.py).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from gcs_model_sync.errors import InsufficientSpace
from gcs_model_sync.formats import archives
from gcs_model_sync.formats.extractor import Extractor
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.plan.actions import Install
from gcs_model_sync.source.remote import Bucket


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
    """The installs, each archive whose format states its extracted size (a zip, in its
    central directory) with that size: one ranged read of its end (up to 256 KiB for a zip).
    Folders and tars are unchanged: a folder's stored size is exact; a tar states no total."""
    told = [
        (i, x)
        for i in installs
        if i.version.stated_size is None
        and (x := archives.REGISTRY.extractor(i.version.form)) is not None
        and x.tail_start(i.version.objects[0].size) is not None
    ]
    if not told:
        return installs
    with cf.ThreadPoolExecutor(min(workers, len(told)), thread_name_prefix="size") as pool:
        sizes = dict(
            zip(
                (i.version.id for i, _ in told),
                pool.map(lambda ix: stated_size(bucket, ix[0].version.objects[0], ix[1]), told),
                strict=True,
            )
        )
    return tuple(
        dataclasses.replace(i, version=dataclasses.replace(i.version, stated_size=n))
        if (n := sizes.get(i.version.id)) is not None
        else i
        for i in installs
    )


def stated_size(bucket: Bucket, obj: RemoteObject, extractor: Extractor) -> int | None:
    """What the archive extracts to, from its end; None when that cannot be told (a
    gzip-encoded object, a proxy that ignores Range, an end that does not tell, an error:
    the stored size is used then, and the staging itself still stops on a full disk)."""
    start = extractor.tail_start(obj.size)
    if (obj.encoding or "").strip().lower() not in ("", "identity") or start is None:
        return None
    tail = bucket.tail(obj, start)
    return None if tail is None else extractor.stated_size(tail)
