"""Partial downloads on disk: the file of a big object read in ranges, and its record.

Both live under DEST/.gcs-model-sync/partial, named by object and generation. The record
says which bytes of each range are in the file, with their CRC-32C; a pass that is stopped
(SIGTERM, kill -9, a network that stays down) leaves both, and the next pass resumes from
what the record vouches for and the file still holds. Whatever the record claims, nothing
is used before the whole object's checksum matches (ranged.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
from collections.abc import Iterable
from pathlib import Path

from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source import checksum

RECORD = ".json"
CHUNK = 1024 * 1024  # what is read back at a time to check a resumed range


def key(obj: RemoteObject) -> str:
    """The partial's file name: the object (hashed: names may be 1,024 bytes) and generation."""
    digest = hashlib.sha256(obj.name.encode()).hexdigest()[:32]
    return f"{digest}.{obj.generation}"


def stale(present: Iterable[str], fetching: Iterable[RemoteObject]) -> list[str]:
    """Partial files to remove: each one whose object generation is not to be fetched now (a
    new generation was uploaded, or its version left the plan). Pure: names in, names out."""
    keep = {key(o) for o in fetching}
    return sorted(n for n in present if n.removesuffix(RECORD) not in keep)


def remove_stale(folder: Path, fetching: Iterable[RemoteObject]) -> int:
    try:
        names = [p.name for p in folder.iterdir()]
    except FileNotFoundError:
        return 0
    gone = stale(names, fetching)
    for name in gone:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    return len(gone)


class Slice:
    """A byte range and how much of it is in the file, with that much's CRC-32C. The pair is
    one tuple, replaced whole: readers of another thread never see a count with the wrong
    CRC, and no lock is taken per chunk (such a lock costs 16 readers half their time)."""

    __slots__ = ("end", "progress", "start")

    def __init__(self, start: int, end: int, got: int = 0, crc: int = 0) -> None:
        self.start, self.end = start, end
        self.progress = (got, crc)

    @property
    def got(self) -> int:
        return self.progress[0]

    @property
    def crc(self) -> int:
        return self.progress[1]

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def done(self) -> bool:
        return self.got >= self.size


def recorded(folder: Path, obj: RemoteObject) -> list[Slice] | None:
    """The slices an earlier pass recorded for this very object generation, covering it
    exactly; None when there is no such record. What they claim is checked only when used."""
    try:
        doc = json.loads((folder / (key(obj) + RECORD)).read_text())
        if (doc["name"], doc["generation"], doc["size"], doc["crc32c"]) != (
            obj.name,
            obj.generation,
            obj.size,
            obj.crc32c,
        ):
            return None
        slices = [Slice(*map(int, s)) for s in doc["slices"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    covered = all(a.end == b.start for a, b in itertools.pairwise(slices))
    if not slices or slices[0].start or slices[-1].end != obj.size or not covered:
        return None
    return slices


def resumable(folder: Path, obj: RemoteObject) -> list[Slice] | None:
    """The slices recorded for this very generation, if its file is still there whole."""
    try:
        if (folder / key(obj)).stat().st_size != obj.size:
            return None
    except OSError:
        return None
    return recorded(folder, obj)


def save(folder: Path, obj: RemoteObject, slices: list[Slice]) -> None:
    """Record where each range got to (one writer at a time: one tmp file, one rename)."""
    doc = {
        "name": obj.name,
        "generation": obj.generation,
        "size": obj.size,
        "crc32c": obj.crc32c,
        "slices": [[s.start, s.end, *s.progress] for s in slices],
    }
    record = folder / (key(obj) + RECORD)
    tmp = record.with_name(record.name + ".tmp")
    # No fsync: after a power cut a record ahead of its bytes fails the final checksum.
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, record)


def check(fd: int, slices: list[Slice], stop: StopToken) -> int:
    """Read back what an earlier pass wrote and keep only the ranges whose bytes still match
    their recorded CRC: the per-range CRCs are of the bytes as they arrived, so the combined
    check at the end covers the disk only if this one does. The bytes found damaged."""
    damaged = 0
    for s in slices:
        crc, at = 0, s.start
        while at < s.start + s.got:
            stop.check()
            data = os.pread(fd, min(CHUNK, s.start + s.got - at), at)
            if not data:
                break
            crc, at = checksum.extend(crc, data), at + len(data)
        if s.got and (at != s.start + s.got or crc != s.crc):
            damaged += s.got
            s.progress = (0, 0)
    return damaged


def held(folder: Path, objects: Iterable[RemoteObject]) -> int:
    """Bytes the partial downloads of these objects take on disk (allocated blocks, a sparse
    file's holes not counted): what resuming them does not need again, whether the record
    vouches for them or they are overwritten in place, and what removing them gives back."""
    total = 0
    for obj in objects:
        for name in (key(obj), key(obj) + RECORD):
            try:
                st = os.stat(folder / name)
            except OSError:
                continue
            total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
    return total


def remove(folder: Path, obj: RemoteObject) -> int:
    """Remove this object's partial download and its record; the bytes that gives back."""
    freed = held(folder, (obj,))
    for name in (key(obj), key(obj) + RECORD):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    return freed


def on_disk(folder: Path, obj: RemoteObject) -> int:
    """Bytes of this object generation an earlier pass left to resume from, for `plan`."""
    return sum(s.got for s in recorded(folder, obj) or ())
