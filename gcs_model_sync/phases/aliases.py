"""Reads each model's aliases object (--aliases, `PREFIX/<model>/aliases.json`) named in the
listing, for the plan (pins.py says what it holds in place).

Read at the generation the listing saw, so the labels and the versions they name come from
one moment of the bucket; a generation read once is remembered for the process's life, so
`run` costs one request per change of the object, not one per pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gcs_model_sync.errors import Interrupted, SyncError
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.logs import event
from gcs_model_sync.phases.peek import read_head
from gcs_model_sync.plan.pins import ALIASES_MAX, Aliases, parse_aliases
from gcs_model_sync.source.remote import Bucket

_known: dict[tuple[str, str, int], Aliases] = {}  # (bucket, object, generation) -> as read
_KNOWN_MAX = 4096


def object_name(prefix: str, model: str, name: str) -> str:
    """Where a model's aliases object is: PREFIX/<model>/<name> (PREFIX/<name> for the model
    at the prefix itself)."""
    return f"{prefix}{model}/{name}" if model else f"{prefix}{name}"


def read(
    bucket: Bucket, objects: Iterable[RemoteObject], models: Iterable[str], name: str
) -> dict[str, Aliases]:
    """Model -> its aliases object as read; models without one are absent. An object that
    cannot be read is its model's problem (nothing of the model changes), not the pass's."""
    prefix, where = bucket.source.prefix, f"gs://{bucket.source.bucket}/"
    names = {object_name(prefix, m, name): m for m in models}
    if len(_known) > _KNOWN_MAX:
        _known.clear()
    out = {}
    for obj in objects:
        model = names.get(obj.name)
        if model is None:
            continue
        key = (bucket.source.bucket, obj.name, obj.generation)
        found = _known.get(key)
        if found is None:
            found = _read(bucket, obj, model, where + obj.name)
            if not found.unread:
                _known[key] = found
        out[model] = found
    return out


def _read(bucket: Bucket, obj: RemoteObject, model: str, where: str) -> Aliases:
    try:  # one byte past the bound: a larger object is refused by its size, not cut short
        data = read_head(bucket, obj, ALIASES_MAX + 1)
    except Interrupted:
        raise
    except SyncError as exc:
        event(logging.WARNING, "aliases_unread", f"{where}: cannot be read ({exc})", object=where)
        message = f"{where}: cannot be read ({exc})"
        return Aliases(model, where, obj.generation, problem=message, unread=True)
    return parse_aliases(model, where, obj.generation, data)
