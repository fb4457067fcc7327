"""Pure: is a folder-form version's upload complete, judged from the listing (and from the
first bytes of a few model files, read by phases/peek.py: see companions.py)?

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
from gcs_model_sync.plan import companions
from gcs_model_sync.plan.companions import Needs

SHARD_RE = re.compile(r"variables/variables\.data-([0-9]+)-of-([0-9]+)")
SAVED_MODEL_FILES = companions.SAVED_MODEL_FILES
# Facts: what the bytes of a few listed objects say they need, by (name, generation); the
# engine reads them (companions.read_size says which and how much) for versions about to be
# installed. An object it could not read maps to Needs(): judged by the listing alone.
Facts = Mapping[tuple[str, int], Needs]


class Wait(StrEnum):
    MARKER = "marker"  # --ready-marker missing, or objects newer than it
    INCOMPLETE = "incomplete"  # a model file without a companion it needs (a shard, weights)
    SETTLING = "settling"  # the newest object is younger than --settle
    SHRUNK = "shrunk"  # an installed version lost some of its objects
    UNREAD = "unread"  # some of its model files must be read first (the engine reads them)


class Rules(NamedTuple):
    """When a folder version counts as complete; `now` is the bucket's clock (Unix time)."""

    now: float | None = None
    settle: float = 0.0
    marker: str | None = None


def waiting(
    entries: Sequence[Entry], rules: Rules, facts: Facts | None = None
) -> tuple[Wait, str] | None:
    """Why this folder version is not complete yet, or None when it may be published.

    The files' own bytes are judged last, once the listing alone would publish the version,
    so a version still settling costs no read; without `facts` they are not judged.
    """
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
    if facts is not None:
        if unread(entries, facts):
            return Wait.UNREAD, "some of its model files are read first"
        if missing := companion_gap(entries, facts):
            return Wait.INCOMPLETE, missing
    return None


def saved_model_gap(paths: Collection[str]) -> str | None:
    """What a SavedModel still lacks: its graph, its variables index, or an announced shard.

    A SavedModel may sit anywhere in the version (Triton's V/model.savedmodel/): each folder
    holding a saved_model.pb, or a variables/ folder with checkpoint files, is checked on its
    own. A version with neither is some other format and is left to --settle.
    """
    names = set(paths)
    for root in _saved_model_roots(names):
        if gap := _root_gap(root, names):
            return gap
    return None


def _saved_model_roots(names: set[str]) -> list[str]:
    """Each SavedModel's folder ("" or "dir/"). Any variables/ at the version's top counts;
    deeper, only a graph or checkpoint files do, since `variables` is a common folder name."""
    roots = set()
    for p in names:
        head, _, base = p.rpartition("/")
        root = f"{head}/" if head else ""
        if base in SAVED_MODEL_FILES:
            roots.add(root)
        elif p.startswith("variables/"):
            roots.add("")
        elif head.endswith("/variables") and (
            base == "variables.index" or base.startswith("variables.data-")
        ):
            roots.add(head[: -len("variables")])
    return sorted(roots)


def _root_gap(root: str, names: set[str]) -> str | None:
    variables = [p[len(root) :] for p in names if p.startswith(f"{root}variables/")]
    if not variables:
        return None  # no variables (a graph-only model): its graph's bytes say if it needs any
    if not any(f"{root}{f}" in names for f in SAVED_MODEL_FILES):
        return f"has {root}variables/ but no {root}saved_model.pb yet"
    if f"{root}variables/variables.index" not in names:
        return f"SavedModel without {root}variables/variables.index yet"
    announced: dict[int, set[int]] = {}
    for p in variables:
        if m := SHARD_RE.fullmatch(p):
            announced.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
    if not announced:
        return f"SavedModel without any {root}variables/variables.data-* shard yet"
    for total, have in sorted(announced.items()):
        if gaps := sorted(set(range(total)) - have):
            shard = f"{root}variables/variables.data-{gaps[0]:05d}-of-{total:05d}"
            more = f" and {len(gaps) - 1} more" if len(gaps) > 1 else ""
            return f"SavedModel missing {shard}{more}"
    return None


def to_read(entries: Sequence[Entry]) -> list[Entry]:
    """The objects whose bytes decide whether the version is complete: each SavedModel graph
    with no variables/ beside it (frozen, or its variables not uploaded yet), each .onnx
    (external data files are named inside it), each .xml without a .bin of its name (an
    OpenVINO IR, or some other XML: its root element tells)."""
    names = {e.relpath for e in entries}
    out = []
    for e in entries:
        head, _, base = e.relpath.rpartition("/")
        root = f"{head}/" if head else ""
        if base in SAVED_MODEL_FILES:
            if base == "saved_model.pbtxt" and f"{root}saved_model.pb" in names:
                continue  # TF Serving loads the binary graph when both are there
            if any(p.startswith(f"{root}variables/") for p in names):
                continue  # the listing rules judge it
        elif base.endswith(".xml") and f"{e.relpath[: -len('.xml')]}.bin" in names:
            continue  # an IR with its weights, or an XML that needs nothing
        if companions.read_size(e.relpath, e.obj.size) is not None:
            out.append(e)
    return out


def unread(entries: Sequence[Entry], facts: Facts) -> list[Entry]:
    """The objects to read before this version can be judged."""
    return [e for e in to_read(entries) if (e.obj.name, e.obj.generation) not in facts]


def companion_gap(entries: Sequence[Entry], facts: Facts) -> str | None:
    """What a model file's bytes say is missing beside it: a SavedModel graph's variables,
    an ONNX model's external data, an OpenVINO IR's weights (the first one missing)."""
    names = {e.relpath for e in entries}
    for e in to_read(entries):
        need = facts.get((e.obj.name, e.obj.generation))
        if need is None:
            continue
        head = e.relpath.rpartition("/")[0]
        folder = f"{head}/" if head else ""
        if need.variables:
            return f"{e.relpath} references variables but no {folder}variables/ uploaded yet"
        for f in need.files:
            if f"{folder}{f}" not in names:
                return f"{e.relpath} refers to {folder}{f}, not uploaded yet"
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
