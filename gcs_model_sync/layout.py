"""The naming rules in one place: object key <-> (model, version, form)."""

from __future__ import annotations

import functools
import gc
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import NamedTuple, ParamSpec, TypeVar

from gcs_model_sync.formats import archives
from gcs_model_sync.formats.archives import (
    Form as Form,  # the version's form, named here with its key
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def paused_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """For the listing's per-object work (grouping, planning): a few objects allocated per
    listed object and no cycles, so the cyclic collector only costs time, and its full scans
    grow with the heap: on a listing of 100,000 objects they are nearly a third of the work."""

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()

    return paused


VERSION_RE = re.compile(r"[0-9]+")
# TF Serving reads a version folder's name as an int64 and skips one beyond it: such a name
# is no version (never served, so never ranked, installed or pruned).
VERSION_MAX = 2**63 - 1
STATE_DIR = ".gcs-model-sync"  # reserved at the top of DEST
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems


class RemoteObject(NamedTuple):
    """One listed object, pinned to the generation we saw."""

    name: str
    generation: int
    size: int
    crc32c: str | None = None
    md5: str | None = None
    updated: str = ""  # RFC 3339, when this generation was finalized (the bucket's clock)
    encoding: str | None = None  # Content-Encoding as stored ("gzip" for `gsutil cp -Z`)


class Entry(NamedTuple):
    """A listed object that belongs to a version; `problem` marks a key we refuse to write.

    A NamedTuple, not a frozen dataclass: a listing of 100,000 objects builds 100,000 of these.
    """

    obj: RemoteObject
    model: str  # "" when the prefix points at one model
    version: str  # the folder name exactly as in the bucket ("0002")
    form: Form
    relpath: str = ""  # folder form only: path inside the version
    problem: str | None = None

    @property
    def number(self) -> int:
        return int(self.version)


def servable(version: str) -> bool:
    """A version number a model server reads (all digits, at most VERSION_MAX). The length
    is checked first: int() of a long digit string costs, and past 4,300 digits raises."""
    digits = version.lstrip("0")
    return len(digits) <= len(str(VERSION_MAX)) and int(digits or "0") <= VERSION_MAX


def numbers_by_model(version_ids: Iterable[str]) -> dict[str, set[int]]:
    """Model -> the version numbers of these ids (`m/0003` -> `{"m": {3}}`)."""
    out: dict[str, set[int]] = {}
    for vid in version_ids:
        model, version = split_id(vid)
        out.setdefault(model, set()).add(int(version))
    return out


def version_id(model: str, version: str) -> str:
    """The version's path relative to DEST, which is also its key in the state file."""
    return f"{model}/{version}" if model else version


def split_id(vid: str) -> tuple[str, str]:
    """(model, version) of a version id, or (model, name) of a model file's id: the inverse
    of version_id. A model path may hold slashes; a version or file name never does."""
    model, _, last = vid.rpartition("/")
    return model, last


def _unsafe(parts: Iterable[str], top_level: bool) -> str | None:
    for i, part in enumerate(parts):
        if part in ("", ".", ".."):
            return f"path component {part!r} escapes or is empty"
        if "\x00" in part or "\\" in part:
            return "path component contains NUL or backslash"
        if top_level and i == 0 and part == STATE_DIR:
            return f"{STATE_DIR} is reserved for the tool's own state"
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            return f"path component longer than {NAME_MAX} bytes"
    return None


class _Head(NamedTuple):
    """What an object's folder says, shared by every object in it (computed once per folder)."""

    model: str | None  # None: no version component in the folder
    version: str
    rest: str  # path between the version component and the object's own name
    problem: str | None
    parts: tuple[str, ...]
    key: tuple[str, str, Form] | None  # the version's group key, for folder-form objects


GroupKey = tuple[str, str, Form]  # (model, version as spelled, form)
Groups = dict[GroupKey, list[Entry]]


def _parse(
    obj: RemoteObject, prefix: str, heads: dict[str, _Head]
) -> tuple[Entry, GroupKey] | None:
    """The naming rules for one object, and its version's group key.

    The hot loop of planning (100,000 objects a pass is normal): per object only the last path
    component is examined; everything about the folder is computed once, in `heads`.
    """
    name = obj.name
    rel = name[len(prefix) :] if name.startswith(prefix) else name
    if not rel or rel[-1] == "/":
        return None  # folder placeholder
    folder, sep, last = rel.rpartition("/")
    hkey = folder if sep else "\x00"  # "/0002.zip" has an (empty, refused) folder; "0002.zip" none
    head = heads.get(hkey)
    if head is None:
        head = heads[hkey] = _head(folder, bool(sep))
    if head.key is not None:  # folder form: the version sits in the object's folder
        problem = head.problem or (_unsafe((last,), top_level=False) if _odd(last) else None)
        relpath = f"{head.rest}/{last}" if head.rest else last
        return Entry(obj, head.key[0], head.version, Form.FOLDER, relpath, problem), head.key
    registry = archives.REGISTRY  # looked up per call: a registry swapped whole is read
    m = registry.name_re.fullmatch(last)  # (Registry.parse, inlined: the loop is hot)
    if m is None:
        return None
    version, form = m.group(1), registry.forms[m.group(2)]
    problem = _unsafe((*head.parts, version), top_level=True)
    return Entry(obj, folder, version, form, "", problem), (folder, version, form)


def _odd(part: str) -> bool:
    """A cheap pre-check so that ordinary names skip the full _unsafe scan."""
    return part in ("", ".", "..") or "\x00" in part or "\\" in part or len(part) > NAME_MAX // 4


def _head(folder: str, has_folder: bool) -> _Head:
    parts = tuple(folder.split("/")) if has_folder else ()
    for i, part in enumerate(parts):
        if VERSION_RE.fullmatch(part):
            model_parts, rest = parts[:i], parts[i + 1 :]
            problem = _unsafe([*model_parts, part], top_level=True) or _unsafe(
                rest, top_level=False
            )
            model = "/".join(model_parts)
            return _Head(model, part, "/".join(rest), problem, parts, (model, part, Form.FOLDER))
    return _Head(None, "", "", None, parts, None)


@paused_gc
def group(objects: Iterable[RemoteObject], prefix: str) -> Groups:
    """One pass over a listing: entries grouped by version, in listing order within a group."""
    heads: dict[str, _Head] = {}
    groups: Groups = {}
    for obj in objects:
        parsed = _parse(obj, prefix, heads)
        if parsed is None:
            continue
        entry, key = parsed
        members = groups.get(key)
        if members is None:
            groups[key] = [entry]
        else:
            members.append(entry)
    return groups


def fingerprint(form: Form, entries: Iterable[Entry], beside: Manifests | None = None) -> str:
    """Identity of a version's content in the bucket: its form, objects and generations, and
    those of its manifests (a changed one is checked again)."""
    items = sorted((e.relpath or e.obj.name, e.obj.generation) for e in entries)
    items += [(f"\x01{o.name}", o.generation) for o in beside or () if o is not None]
    if form is not Form.FOLDER and len(items) == 1:
        return f"{form}:{items[0][1]}"
    text = "".join(f"{rel}\x00{gen}\n" for rel, gen in items)
    return hashlib.sha256(f"{form}{text}".encode()).hexdigest()[:32]


# Beside a version V (an archive or a folder): V.sha256, the sha256sum of its files, and
# V.sig, a model-signing bundle of them. Never versions, rejected names nor model files.
MANIFEST_RE = re.compile(r"([0-9]+)\.(sha256|sig)")
_MANIFEST_ENDS = (".sha256", ".sig")


class Manifests(NamedTuple):
    """The manifests listed beside one version (None: not listed)."""

    digest: RemoteObject | None = None
    signature: RemoteObject | None = None


NO_MANIFESTS = Manifests()


def manifests(objects: Iterable[RemoteObject], prefix: str) -> dict[tuple[str, str], Manifests]:
    """`V.sha256` and `V.sig` by (model, version as spelled); one inside a version's folder
    is a file of that version, not a manifest."""
    out: dict[tuple[str, str], Manifests] = {}
    for obj in objects:
        if not obj.name.endswith(_MANIFEST_ENDS):  # C speed: the listing may be 100,000 long
            continue
        rel = obj.name[len(prefix) :] if obj.name.startswith(prefix) else obj.name
        folder, _, name = rel.rpartition("/")
        m = MANIFEST_RE.fullmatch(name)
        if m is None or any(VERSION_RE.fullmatch(part) for part in folder.split("/")):
            continue
        had = out.get((folder, m.group(1)), Manifests())
        kind = "digest" if m.group(2) == "sha256" else "signature"
        out[(folder, m.group(1))] = had._replace(**{kind: obj})
    return out


class ModelFile(NamedTuple):
    """An object directly inside a model folder (Triton's config.pbtxt, a labels file)."""

    model: str
    name: str
    obj: RemoteObject

    @property
    def id(self) -> str:
        return f"{self.model}/{self.name}"


def model_files(
    objects: Iterable[RemoteObject], prefix: str, models: Iterable[str]
) -> list[ModelFile]:
    """`--model-files`: the objects directly inside a folder that holds versions.

    Not at the prefix root (model ""), not in a folder without versions, not a version's own
    name (an archive, or a number: the folder a version lands in), not a version's manifest,
    not a name we refuse to write. One pass over the listing, only when the option is on.
    """
    wanted = {m for m in models if m}
    out = []
    for obj in objects:
        rel = obj.name[len(prefix) :] if obj.name.startswith(prefix) else obj.name
        folder, sep, name = rel.rpartition("/")
        if not sep or folder not in wanted or not name:
            continue
        if VERSION_RE.fullmatch(name) or archives.REGISTRY.name_re.fullmatch(name):
            continue
        if MANIFEST_RE.fullmatch(name):
            continue
        if _unsafe((name,), top_level=False):
            continue
        out.append(ModelFile(folder, name, obj))
    return out
