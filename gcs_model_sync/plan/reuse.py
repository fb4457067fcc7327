"""Which files of a folder-form version to install are on disk already, byte for byte, in a
version we installed of the same model: hard-linked instead of downloaded (rsync's
--link-dest, matched by size and CRC-32C rather than by name and mtime).

Pure: it reads what the state file recorded when each version was published. The install
checks each file on disk before it links it (install/reuse.py); one that no longer holds
those bytes is downloaded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from gcs_model_sync.layout import Form, RemoteObject
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import PENDING, Managed
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.units import human

Sum = tuple[int, str]  # (size, CRC-32C as listed)


@dataclass(frozen=True, slots=True)
class Link:
    relpath: str  # in the version being installed
    source: str  # in the version linked from
    size: int
    crc32c: str


@dataclass(frozen=True, slots=True)
class Reuse:
    """The files of one install linked from one installed version, instead of downloaded."""

    version: str  # the id of the version being installed
    source: Managed  # the installed version the files are linked from
    links: tuple[Link, ...]
    files: int  # every file of the version
    size: int  # every byte of the version

    @property
    def linked_bytes(self) -> int:
        return sum(link.size for link in self.links)

    @property
    def download_bytes(self) -> int:
        return self.size - self.linked_bytes

    def describe(self) -> str:
        return (
            f"{len(self.links)} of {self.files} files linked from {self.source.id}, "
            f"{human(self.download_bytes)} to download"
        )


def crc_of(obj: RemoteObject) -> str | None:
    """The CRC-32C a file installed from `obj` holds; None when the listing cannot say (an
    object stored gzip-encoded is listed with the CRC of its stored bytes), or when there is
    nothing worth linking (an empty file)."""
    if obj.encoding or not obj.size:
        return None
    return obj.crc32c


def plan_reuse(versions: Iterable[RemoteVersion], local: LocalView) -> tuple[Reuse, ...]:
    """For each folder-form version, the installed version of its model it shares the most
    bytes with (the newest of equals), and which of its files to link from there. A version
    being replaced counts: its old files are linked before the old folder is retired."""
    folders = [v for v in versions if v.form is Form.FOLDER]
    if not folders:  # a no-op pass looks at no installed version
        return ()
    by_model: dict[str, list[Managed]] = defaultdict(list)
    for m in local.managed.values():
        if (
            m.sums
            and m.fingerprint != PENDING
            and m.id in local.on_disk
            and m.id not in local.links
            and m.model not in local.links
        ):
            by_model[m.model].append(m)
    out = []
    for v in folders:
        if not by_model.get(v.model):
            continue
        best: tuple[int, int, Managed, tuple[Link, ...]] | None = None
        for m in by_model[v.model]:
            links = _links(v, m)
            score = (sum(link.size for link in links), int(m.version))
            if links and (best is None or score > best[:2]):
                best = (*score, m, links)
        if best is not None:
            out.append(Reuse(v.id, best[2], best[3], len(v.entries), v.size))
    return tuple(out)


def _links(v: RemoteVersion, m: Managed) -> tuple[Link, ...]:
    """The files of `v` that `m` holds: at the same path when it is there, else at the first
    path (in order) that holds the same bytes (a file moved to another folder)."""
    assert m.sums is not None
    where: dict[Sum, str] = {}
    for rel, s in sorted(m.sums.items()):
        where.setdefault(s, rel)
    links = []
    for e in v.entries:
        crc = crc_of(e.obj)
        if crc is None:
            continue
        s = (e.obj.size, crc)
        source = e.relpath if m.sums.get(e.relpath) == s else where.get(s)
        if source is not None:
            links.append(Link(e.relpath, source, e.obj.size, crc))
    return tuple(links)


def find(reuses: Iterable[Reuse], vid: str) -> Reuse | None:
    return next((r for r in reuses if r.version == vid), None)
