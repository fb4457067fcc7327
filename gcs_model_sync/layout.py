"""The naming rules in one place: object key <-> (model, version, form)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

VERSION_RE = re.compile(r"[0-9]+")
ARCHIVE_RE = re.compile(r"([0-9]+)\.(zip|tar\.gz|tgz|tar)")
STATE_DIR = ".gcs-model-sync"  # reserved at the top of DEST
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems


class Form(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    TGZ = "tar.gz"
    FOLDER = "folder"


_ARCHIVE_FORMS = {"zip": Form.ZIP, "tar": Form.TAR, "tar.gz": Form.TGZ, "tgz": Form.TGZ}


class RemoteObject(NamedTuple):
    """One listed object, pinned to the generation we saw."""

    name: str
    generation: int
    size: int
    crc32c: str | None = None
    md5: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A listed object that belongs to a version; `problem` marks a key we refuse to write."""

    obj: RemoteObject
    model: str  # "" when the prefix points at one model
    version: str  # the folder name exactly as in the bucket ("0002")
    form: Form
    relpath: str = ""  # folder form only: path inside the version
    problem: str | None = None

    @property
    def number(self) -> int:
        return int(self.version)


def version_id(model: str, version: str) -> str:
    """The version's path relative to DEST, which is also its key in the state file."""
    return f"{model}/{version}" if model else version


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


def parse_key(name: str, prefix: str) -> Entry | None:
    """Classify one object; None means "not part of any version" (ignored)."""
    rel = name[len(prefix) :] if name.startswith(prefix) else name
    if not rel or rel.endswith("/"):
        return None  # folder placeholder
    parts = rel.split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if not last and VERSION_RE.fullmatch(part):
            form, relparts = Form.FOLDER, parts[i + 1 :]
        elif last and (m := ARCHIVE_RE.fullmatch(part)):
            part, form, relparts = m.group(1), _ARCHIVE_FORMS[m.group(2)], []
        else:
            continue
        model_parts = parts[:i]
        problem = _unsafe([*model_parts, part], top_level=True) or _unsafe(
            relparts, top_level=False
        )
        return Entry(
            obj=RemoteObject(name, 0, 0),
            model="/".join(model_parts),
            version=part,
            form=form,
            relpath="/".join(relparts),
            problem=problem,
        )
    return None


def classify(objects: Iterable[RemoteObject], prefix: str) -> list[Entry]:
    entries = []
    for obj in objects:
        entry = parse_key(obj.name, prefix)
        if entry is not None:
            entries.append(_with_obj(entry, obj))
    return entries


def _with_obj(entry: Entry, obj: RemoteObject) -> Entry:
    return Entry(obj, entry.model, entry.version, entry.form, entry.relpath, entry.problem)


def fingerprint(form: Form, entries: Iterable[Entry]) -> str:
    """Identity of a version's content in the bucket: its form, objects and generations."""
    items = sorted((e.relpath or e.obj.name, e.obj.generation) for e in entries)
    if form is not Form.FOLDER and len(items) == 1:
        return f"{form}:{items[0][1]}"
    digest = hashlib.sha256(form.encode())
    for rel, gen in items:
        digest.update(f"{rel}\x00{gen}\n".encode())
    return digest.hexdigest()[:32]
