"""Reads the first bytes of the few model files whose content decides completeness.

completeness.to_read() names them, companions.py judges their bytes, and the plan is made again with
what they said. Only versions about to be installed are read (an installed, unchanged version
costs no request), and what an object generation needs is kept for the process's life, so
`run` reads a waiting graph once, not every pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from gcs_model_sync.errors import Interrupted, SyncError
from gcs_model_sync.layout import Entry, RemoteObject
from gcs_model_sync.logs import event
from gcs_model_sync.plan import companions, completeness
from gcs_model_sync.plan.companions import Needs
from gcs_model_sync.plan.completeness import Wait
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.source.reads import ObjectReader
from gcs_model_sync.source.remote import Bucket

Facts = dict[tuple[str, int], Needs]
_known: dict[str, Facts] = {}  # bucket -> (object, generation) -> what it needs
_KNOWN_MAX = 4096  # objects remembered; more (a bucket of endless new versions) starts over


def planned(bucket: Bucket, make: Callable[[Facts], Plan]) -> Plan:
    """make(facts) until no version waits on an unread file: each round reads the files of
    the versions the last plan would install, and a version judged incomplete may let --keep
    reach an older one, read in the next round. Every round reads new objects only."""
    known = _known.setdefault(bucket.source.bucket, {})
    if len(known) > _KNOWN_MAX:
        known.clear()
    facts = dict(known)
    plan = make(facts)
    while todo := [
        e
        for w in plan.waiting
        if w.kind is Wait.UNREAD
        for e in completeness.unread(w.version.entries, facts)
    ]:
        learn(bucket, todo, facts, known)
        plan = make(facts)
    return plan


def learn(bucket: Bucket, entries: Iterable[Entry], facts: Facts, known: Facts) -> None:
    """What each object needs, into `facts` (and `known`, when it could be read). An object
    that cannot be read is judged by the listing alone: its download then fails and says so."""
    for e in entries:
        key = (e.obj.name, e.obj.generation)
        limit = companions.read_size(e.relpath, e.obj.size)
        if limit is None:
            facts[key] = Needs()
            continue
        try:
            head = read_head(bucket, e.obj, limit)
        except Interrupted:
            raise
        except SyncError as exc:
            event(
                logging.WARNING,
                "model_file_unread",
                f"gs://{bucket.source.bucket}/{e.obj.name}: cannot read it to see what it needs "
                f"beside it ({exc}); judged by the listing alone",
                object=e.obj.name,
            )
            facts[key] = Needs()
            continue
        facts[key] = known[key] = companions.needs(e.relpath, head)


def read_head(bucket: Bucket, obj: RemoteObject, limit: int) -> bytes:
    """The object's first `limit` bytes as its content (gzip-stored ones decoded); checked
    against the listed checksum when that is the whole object."""
    plain = (obj.encoding or "").strip().lower() in ("", "identity")
    with ObjectReader(bucket, obj, 0, min(obj.size, limit)) if plain else bucket.open(obj) as r:
        source = r.content()
        chunks, have = [], 0
        while have < limit and (data := source.read(min(limit - have, 1024 * 1024))):
            chunks.append(data)
            have += len(data)
        if plain and obj.size <= limit:
            r.verify()
    return b"".join(chunks)
