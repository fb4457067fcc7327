"""Pure: is a folder-form version's upload complete, judged from the listing alone?

A folder version arrives object by object (`gsutil -m cp -r`, a training job's own writer),
so a listing can catch it half uploaded. TF Serving loads the first thing it sees under a
version number and never reloads it, so a half upload must never be published. Archive forms
are single objects, complete once listed, and never wait.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from gcs_model_sync.layout import Entry

SHARD_RE = re.compile(r"variables/variables\.data-([0-9]+)-of-([0-9]+)")
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class Wait(StrEnum):
    MARKER = "marker"  # --ready-marker missing, or objects newer than it
    INCOMPLETE = "incomplete"  # a SavedModel missing its variables index or a shard
    SETTLING = "settling"  # the newest object is younger than --settle
    SHRUNK = "shrunk"  # an installed version lost some of its objects


class Rules(NamedTuple):
    """When a folder version counts as complete; `now` is the bucket's clock (Unix time)."""

    now: float | None = None
    settle: float = 0.0
    marker: str | None = None


def waiting(entries: Sequence[Entry], rules: Rules) -> tuple[Wait, str] | None:
    """Why this folder version is not complete yet, or None when it may be published."""
    if rules.marker:
        mark = next((e for e in entries if e.relpath == rules.marker), None)
        if mark is None:
            return Wait.MARKER, f"waiting for its ready marker {rules.marker}"
        newer = [e.relpath for e in entries if _time(e) > _time(mark)]
        if newer:
            return Wait.MARKER, f"{newer[0]} is newer than its ready marker {rules.marker}"
    if missing := saved_model_gap([e.relpath for e in entries]):
        return Wait.INCOMPLETE, missing
    if rules.settle > 0 and rules.now is not None:
        age = rules.now - _newest(entries)
        if age < rules.settle:
            return (
                Wait.SETTLING,
                f"settling: newest object {max(age, 0.0):.0f}s old, needs {rules.settle:g}s",
            )
    return None


def saved_model_gap(paths: Collection[str]) -> str | None:
    """What a SavedModel still lacks: its graph, its variables index, or an announced shard.

    Checked only once the version looks like a SavedModel (a saved_model.pb or a variables/
    folder); a version with neither is some other format and is left to --settle.
    """
    variables = [p for p in paths if p.startswith("variables/")]
    if not variables:
        return None  # no variables (a graph-only model), or not a SavedModel at all
    names = set(paths)
    graph = any(f in names for f in SAVED_MODEL_FILES)
    if not graph:
        return "has variables/ but no saved_model.pb yet"
    if "variables/variables.index" not in names:
        return "SavedModel without variables/variables.index yet"
    announced: dict[int, set[int]] = {}
    for p in variables:
        if m := SHARD_RE.fullmatch(p):
            announced.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
    if not announced:
        return "SavedModel without any variables/variables.data-* shard yet"
    for total, have in sorted(announced.items()):
        if gaps := sorted(set(range(total)) - have):
            shard = f"variables/variables.data-{gaps[0]:05d}-of-{total:05d}"
            more = f" and {len(gaps) - 1} more" if len(gaps) > 1 else ""
            return f"SavedModel missing {shard}{more}"
    return None


def shrunk(entries: Sequence[Entry], installed: Mapping[str, int] | None) -> str | None:
    """A delete in progress: the listing is a strict part of what was installed, unchanged.

    New or changed objects make it a re-upload instead, which the other rules judge.
    """
    if not installed or len(entries) >= len(installed):
        return None
    if all(installed.get(e.relpath) == e.obj.generation for e in entries):
        lost = len(installed) - len(entries)
        return (
            f"lost {lost} of its {len(installed)} objects in the bucket (a delete in progress?); "
            "the installed folder stays until the version is gone or re-uploaded"
        )
    return None


def _newest(entries: Sequence[Entry]) -> float:
    """The newest finalize time. GCS writes every time in one width (milliseconds), and RFC
    3339 UTC times of one width sort as strings: one parse a version instead of one an object.
    """
    stamps = [e.obj.updated for e in entries]
    if len({len(s) for s in stamps}) == 1:
        return _time(entries[stamps.index(max(stamps))])
    return max(_time(e) for e in entries)


def _time(e: Entry) -> float:
    """When the object was finalized; an object without a time counts as old."""
    stamp = e.obj.updated
    if not stamp:
        return 0.0
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0
