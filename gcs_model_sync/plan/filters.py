"""Pure: what --include/--exclude and --refuse-pickle take out of a listing before it is
planned, and what they leave alone on disk. No I/O.

Paths are matched as they land under DEST, relative to it: `MODEL/VERSION/FILE` (an
archive's members as the folder it extracts to), `MODEL/FILE` for --model-files. A model
or version the filters drop whole is as if not listed, and what is installed of it is left
alone, never pruned (as rclone's sync leaves excluded files at the destination). A folder
version keeps its other files, and its fingerprint is theirs: a change to a file left out
changes nothing. A version with a pickle is rejected; what is installed of it stays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from gcs_model_sync.formats import pickles
from gcs_model_sync.layout import Form, Groups, ModelFile, split_id, version_id
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import Managed
from gcs_model_sync.plan.patterns import Filters
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.plan.versions import Rejection


@dataclass(frozen=True, slots=True)
class Rules:
    filters: Filters = field(default_factory=Filters)
    refuse_pickle: bool = False
    ready_marker: str | None = None  # always kept: it says whether the upload is done

    @property
    def active(self) -> bool:
        return self.filters.active or self.refuse_pickle


@dataclass(frozen=True, slots=True)
class Filtered:
    """The listing and the local view the plan is made from, and what was taken out."""

    groups: Groups
    files: list[ModelFile] | None
    local: LocalView
    models: tuple[str, ...] = ()  # listed models dropped whole
    versions: tuple[str, ...] = ()  # listed versions dropped whole, of the models kept
    left: tuple[str, ...] = ()  # folders on disk left alone: their model or version dropped
    excluded: dict[str, int] = field(default_factory=dict)  # version id -> files left out
    rejections: tuple[Rejection, ...] = ()  # --refuse-pickle, known from the listing


def member_path(model: str, version: str, rel: str) -> str:
    """The path an archive member is matched as: below its version, the archive's top
    folder named as the version (`0002/` in `0002.zip`) taken off as extraction does."""
    first, sep, rest = rel.partition("/")
    if sep and first.isascii() and first.isdigit() and int(first) == int(version):
        rel = rest
    return f"{version_id(model, version)}/{rel}"


def apply(
    groups: Groups, files: list[ModelFile] | None, local: LocalView, rules: Rules
) -> Filtered:
    """`groups` and `files` as the rules leave them, and the local view without what they
    leave alone."""
    if not rules.active:
        return Filtered(groups, files, local)
    f = rules.filters
    kept: Groups = {}
    models: set[str] = set()
    versions: set[str] = set()
    excluded: dict[str, int] = {}
    rejections: list[Rejection] = []
    drops_model: dict[str, bool] = {}
    for key, entries in groups.items():
        model, version, form = key
        vid = version_id(model, version)
        if model not in drops_model:
            drops_model[model] = bool(model) and f.drops_folder(model)
        if drops_model[model]:
            models.add(model)
            continue
        if f.drops_folder(vid):
            versions.add(vid)
            continue
        if form is Form.FOLDER and f.active:
            inside = [
                e
                for e in entries
                if e.relpath == rules.ready_marker or f.keeps(f"{vid}/{e.relpath}")
            ]
            if not inside:
                versions.add(vid)
                continue
            if len(inside) < len(entries):
                excluded[vid] = len(entries) - len(inside)
            entries = inside
        if rules.refuse_pickle and form is Form.FOLDER:
            bad = next((e for e in entries if pickles.named(e.relpath)), None)
            if bad is not None:
                why = f"{bad.obj.name}: {pickles.why(bad.relpath)}; not installed"
                rejections.append(Rejection(model, version, why))
                continue
        kept[key] = entries
    refused = {r.id for r in rejections}
    left = tuple(sorted(vid for vid in _local(local) if vid in refused or _drops(f, vid, versions)))
    return Filtered(
        kept,
        None if files is None else [m for m in files if f.keeps(m.id)],
        _view(local, f, set(left)),
        tuple(sorted(models)),
        tuple(sorted(versions)),
        left,
        excluded,
        tuple(rejections),
    )


def _local(local: LocalView) -> Iterable[str]:
    return set(local.managed) | local.on_disk


def _drops(f: Filters, vid: str, versions: set[str]) -> bool:
    model = split_id(vid)[0]
    return vid in versions or f.drops_folder(vid) or (bool(model) and f.drops_folder(model))


def _view(local: LocalView, f: Filters, left: set[str]) -> LocalView:
    """What the plan sees of DEST: not what is left alone, and what is installed as the
    filters see it (a file left out is no loss: not a delete in progress)."""

    def seen(m: Managed) -> Managed:
        if m.objects is None or not f.active:
            return m
        objects = {rel: g for rel, g in m.objects.items() if f.keeps(f"{m.id}/{rel}")}
        return dataclasses.replace(m, objects=objects)

    return dataclasses.replace(
        local,
        managed={vid: seen(m) for vid, m in local.managed.items() if vid not in left},
        on_disk=local.on_disk - left,
        files={fid: mf for fid, mf in local.files.items() if f.keeps(fid)},
    )


def merged(plan: Plan, filtered: Filtered) -> Plan:
    """The plan with the refusals made here; a listing the filters emptied says so."""
    empty = plan.empty
    if empty and filtered.rejections:
        empty = None  # a rejected version is no empty prefix: its error says why
    elif empty and (filtered.models or filtered.versions):
        left = f"{len(filtered.models)} model(s), {len(filtered.versions)} version(s)"
        empty += f"; --include/--exclude left out {left}"
    return dataclasses.replace(plan, rejections=plan.rejections + filtered.rejections, empty=empty)
