"""Pure: the versions a listing holds, the ones it rejects, and ranking for --keep. No I/O.

A version number may be spelled many ways (3, 0003, 3.zip, 0003/): a model server reads each
as the same version, so two spellings of one number, in the bucket or across the bucket and
DEST, are rejected rather than guessed between.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gcs_model_sync.layout import (
    NO_MANIFESTS,
    VERSION_MAX,
    Entry,
    Form,
    GroupKey,
    Groups,
    Manifests,
    RemoteObject,
    fingerprint,
    servable,
    split_id,
    version_id,
)
from gcs_model_sync.local.scan import LocalView

if TYPE_CHECKING:
    from gcs_model_sync.plan.pins import Hold


@dataclass(frozen=True, slots=True)
class RemoteVersion:
    model: str
    version: str
    form: Form
    entries: tuple[Entry, ...]
    fingerprint: str
    # What the version extracts to, where its archive states it (a zip's central directory,
    # read only when a full disk may call for deleting first); None: unknown.
    stated_size: int | None = None
    beside: Manifests = NO_MANIFESTS  # V.sha256 and V.sig, checked before publishing

    @property
    def id(self) -> str:
        return version_id(self.model, self.version)

    @property
    def number(self) -> int:
        return int(self.version)

    @property
    def size(self) -> int:
        return sum(e.obj.size for e in self.entries)

    @property
    def expected_size(self) -> int:
        """The bytes it takes on disk once extracted: the stated size, else the stored one."""
        return self.size if self.stated_size is None else self.stated_size

    @property
    def objects(self) -> tuple[RemoteObject, ...]:
        return tuple(e.obj for e in self.entries)


@dataclass(frozen=True, slots=True)
class Rejection:
    model: str
    version: str
    message: str  # one line, names the object(s)
    refused: bool = False  # by --verify, in an earlier pass
    listed: bool = True  # False: local folders alone (two spellings of a number on disk)

    @property
    def id(self) -> str:
        return version_id(self.model, self.version)


def versions_of(
    groups: Groups, manifests: Mapping[tuple[str, str], Manifests] | None = None
) -> tuple[list[RemoteVersion], list[Rejection]]:
    """Versions from grouped entries, each with the manifests beside it; two spellings of one
    version number reject it, and so does a number beyond what a model server reads (each
    spelling on its own line)."""
    by_number: dict[tuple[str, int], dict[tuple[str, Form], list[Entry]]] = defaultdict(dict)
    versions, rejections = [], []
    for (model, version, form), es in groups.items():
        if not servable(version):
            rejections.append(
                Rejection(
                    model,
                    version,
                    f"{_describe(version, form, es)}: version number beyond {VERSION_MAX} "
                    "(int64), which model servers skip; not a version, never installed",
                )
            )
            continue
        by_number[(model, int(version))][(version, form)] = es
    for (model, _number), candidates in by_number.items():
        if len(candidates) > 1:
            names = sorted(_describe(v, f, es) for (v, f), es in candidates.items())
            version = min(v for v, _ in candidates)
            rejections.append(
                Rejection(
                    model,
                    version,
                    f"ambiguous version {version_id(model, version)}: "
                    f"{' and '.join(names)} both claim it; neither is installed",
                )
            )
            continue
        ((version, form), es) = next(iter(candidates.items()))
        bad = next((e for e in es if e.problem), None)
        if bad:
            rejections.append(
                Rejection(model, version, f"{bad.obj.name}: unsafe object key ({bad.problem})")
            )
            continue
        beside = (manifests or {}).get((model, version), NO_MANIFESTS)
        print_ = fingerprint(form, es, beside)
        versions.append(RemoteVersion(model, version, form, tuple(es), print_, beside=beside))
    return versions, rejections


def ranked(
    numbers: dict[str, list[int]],
    spellings: dict[tuple[str, int], set[str]],
    keep: int,
    skip: set[tuple[str, int]],
    holds: Mapping[str, Hold] | None = None,
) -> set[str]:
    """Version ids within --keep (all when 0), ranking per model without the `skip` ones;
    a model's hold (a pin, aliases) ranks from its pin and adds the versions it names."""
    holds = holds or {}
    out = set()
    for model, listed in numbers.items():
        ready = [n for n in listed if (model, n) not in skip]
        hold = holds.get(model)
        if hold is not None:
            chosen: Iterable[int] = hold.wanted(ready if keep else listed, keep)
        else:
            chosen = sorted(ready)[-keep:] if keep else listed
        for number in chosen:
            out |= spellings[(model, number)]
    return out


def _describe(version: str, form: Form, entries: list[Entry]) -> str:
    if form is Form.FOLDER:
        name, rel = entries[0].obj.name, entries[0].relpath
        return f"folder {name[: len(name) - len(rel)]}"
    return entries[0].obj.name


def spelling_clashes(
    groups: Groups, local: LocalView, rejected: set[tuple[str, int]], wanted: set[str]
) -> list[Rejection]:
    """One number spelled two ways across the bucket and DEST (`3.zip` beside DEST/m/0003,
    or DEST/m/3 beside DEST/m/03): a model server reads both folders as one version and
    serves either, and installing one, or pruning the other first, would change which.
    Nothing of the model changes until one spelling is left. A bucket version counts when
    it is `wanted` (within --keep): one outside it never lands beside the local folder. A
    number the bucket already got an error for (two spellings there, an unsafe key,
    refused) keeps that one."""
    listed: dict[tuple[str, int], list[GroupKey]] = defaultdict(list)
    for key in groups:
        model, version, _form = key
        if version_id(model, version) in wanted:
            listed[(model, int(version))].append(key)
    on_disk: dict[tuple[str, int], set[str]] = defaultdict(set)
    for vid in local.on_disk:
        model, version = split_id(vid)
        on_disk[(model, int(version))].add(version)
    out = []
    for (model, number), disk_spellings in sorted(on_disk.items()):
        keys = listed.get((model, number), [])
        if (model, number) in rejected or len(keys) > 1:
            continue
        spellings = disk_spellings | {version for _m, version, _f in keys}
        if len(spellings) < 2:
            continue
        named = [_local_path(local, model, v) for v in sorted(disk_spellings, key=len)]
        named += [_describe(v, f, groups[(m, v, f)]) for m, v, f in keys]
        version = keys[0][1] if keys else min(disk_spellings, key=len)
        name = f"model {model}" if model else "the model"
        of = f" of {name}" if model else ""
        out.append(
            Rejection(
                model,
                version,
                f"version {number}{of} is spelled more than one way: {' and '.join(named)}; "
                f"a model server reads each as version {number} and may serve either. Keep "
                "one spelling (rename the bucket object, or remove the local folder); "
                f"nothing of {name} changes until then",
                listed=bool(keys),
            )
        )
    return out


def local_spellings(local: LocalView, r: Rejection) -> list[str]:
    """The local version ids a clash names."""
    number = int(r.version)
    return [
        vid
        for vid in local.on_disk
        if split_id(vid)[0] == r.model and int(split_id(vid)[1]) == number
    ]


def _local_path(local: LocalView, model: str, version: str) -> str:
    vid = version_id(model, version)
    return f"{local.dest / vid}" if local.dest else f"local folder {vid}"


def refused_again(
    versions: list[RemoteVersion], local: LocalView
) -> tuple[list[RemoteVersion], list[Rejection]]:
    """Versions --verify refused, unchanged since: rejected again without a download."""
    if not local.refused:
        return versions, []
    keep, rejections = [], []
    for v in versions:
        r = local.refused.get(v.id)
        if r is not None and r.fingerprint == v.fingerprint:
            again = f"{r.message} (refused earlier; tried again when its object changes)"
            rejections.append(Rejection(v.model, v.version, again, refused=True))
        else:
            keep.append(v)
    return keep, rejections
