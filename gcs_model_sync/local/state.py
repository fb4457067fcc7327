"""The state file: which versions and model files are ours, refusals, last failures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from gcs_model_sync.layout import STATE_DIR, VERSION_RE, version_id
from gcs_model_sync.local import safepath
from gcs_model_sync.local.durability import atomic_write
from gcs_model_sync.local.paths import Paths

STATE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Managed:
    """A version folder this tool installed, and which bucket content it came from."""

    model: str
    version: str
    fingerprint: str
    bytes: int = 0
    published_at: float = 0.0
    # Folder form: relpath -> generation as installed, so a delete in progress in the bucket
    # (a strict part of this, unchanged) is told apart from a re-upload. None for archives.
    objects: dict[str, int] | None = None
    # Folder form: relpath -> (size, CRC-32C) of the objects installed (gzip-encoded ones
    # left out: their CRC is of the stored bytes), what a later version may link (reuse.py).
    sums: dict[str, tuple[int, str]] | None = None

    @property
    def id(self) -> str:
        return version_id(self.model, self.version)


@dataclass(frozen=True, slots=True)
class ManagedFile:
    """A model-level file (`--model-files`: DEST/<model>/config.pbtxt) this tool wrote."""

    model: str
    name: str
    generation: int  # PENDING_FILE while being written: a crash leaves "rewrite", not an orphan
    bytes: int = 0

    @property
    def id(self) -> str:
        return f"{self.model}/{self.name}"


PENDING_FILE = 0  # no object has generation 0
# A version's fingerprint while it is being published: a crash leaves "reinstall", never an
# orphan we would take for hand-made.
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A version `--verify` refused: not downloaded again while its content and the command
    stay the same."""

    fingerprint: str
    command: str
    message: str


@dataclass(frozen=True, slots=True)
class LastFailure:
    """Why the last pass that tried to install a version failed (`status` says it); kept
    while the version is listed unchanged and not installed. Never decides anything."""

    fingerprint: str
    message: str


@dataclass
class State:
    """What the state file records: the versions and files we own, refused versions, and the
    last failure of versions not installed yet."""

    versions: dict[str, Managed] = field(default_factory=dict)  # by version id
    files: dict[str, ManagedFile] = field(default_factory=dict)  # by "model/name"
    refused: dict[str, Refusal] = field(default_factory=dict)  # by version id
    failed: dict[str, LastFailure] = field(default_factory=dict)  # by version id


_FIELDS = {
    cls: tuple(f.name for f in fields(cls)) for cls in (Managed, ManagedFile, Refusal, LastFailure)
}


def load_state(paths: Paths) -> State:
    if link := safepath.first_link(paths.dest, paths.state_file):
        # Whoever placed it would decide what is ours, hence what may be deleted.
        raise StateError(f"{link}: {safepath.NOT_FOLLOWED}")
    try:
        raw = json.loads(paths.state_file.read_text())
    except FileNotFoundError:
        return State()
    except (OSError, ValueError) as exc:
        # A damaged state file must not make us delete anything: forget ownership instead.
        raise StateError(f"{paths.state_file}: unreadable state file ({exc})") from exc
    try:
        return _parse_state(raw)
    except (TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"{paths.state_file}: unreadable state file ({exc})") from exc


def _parse_state(raw: object) -> State:
    """Trust nothing: a version id or file from here decides what may be deleted under DEST."""
    if not isinstance(raw, dict):
        raise TypeError("not a JSON object")
    managed = {}
    for item in raw.get("versions", {}).values():
        m = Managed(**item)
        if not all(isinstance(v, str) for v in (m.model, m.version, m.fingerprint)):
            raise TypeError(f"bad entry {item!r}")
        if m.objects is not None and not (
            isinstance(m.objects, dict)
            and all(isinstance(k, str) and type(g) is int for k, g in m.objects.items())
        ):
            raise TypeError(f"bad objects in entry for {m.id!r}")
        if m.sums is not None:
            m = replace(m, sums=_sums(m.sums, m.id))
        if not VERSION_RE.fullmatch(m.version) or _escapes(m.model.split("/") if m.model else []):
            raise ValueError(f"bad entry {item!r}")
        managed[m.id] = m
    files = {}
    for item in raw.get("files", {}).values():
        f = ManagedFile(**item)
        if (
            not (isinstance(f.model, str) and isinstance(f.name, str))
            or type(f.generation) is not int
            or _escapes([*f.model.split("/"), f.name])
            or "/" in f.name
            or VERSION_RE.fullmatch(f.name)
        ):
            raise ValueError(f"bad file entry {item!r}")
        files[f.id] = f
    refused = {}
    for vid, item in raw.get("refused", {}).items():
        r = Refusal(**item)
        if not all(isinstance(v, str) for v in (r.fingerprint, r.command, r.message)):
            raise TypeError(f"bad refusal {item!r}")
        refused[vid] = r  # only compared with listed versions: never decides a deletion
    failed = {}
    for vid, item in raw.get("failed", {}).items():
        last = LastFailure(**item)
        if not all(isinstance(v, str) for v in (vid, last.fingerprint, last.message)):
            raise TypeError(f"bad failure {item!r}")
        failed[vid] = last  # only shown by `status`
    return State(managed, files, refused, failed)


def _sums(raw: object, vid: str) -> dict[str, tuple[int, str]]:
    """A version's recorded sizes and CRCs: they name files below its folder to link from
    (each checked on disk first), so no path may leave it."""
    if not isinstance(raw, dict):
        raise TypeError(f"bad sums in entry for {vid!r}")
    out = {}
    for rel, item in raw.items():
        if not (
            isinstance(rel, str)
            and not _escapes(rel.split("/"))
            and isinstance(item, list | tuple)
            and len(item) == 2
            and type(item[0]) is int
            and isinstance(item[1], str)
        ):
            raise TypeError(f"bad sums in entry for {vid!r}")
        out[rel] = (item[0], item[1])
    return out


def _escapes(parts: list[str]) -> bool:
    """A path from the state file that could reach outside DEST, or into our own state."""
    return any(p in ("", ".", "..") or "\x00" in p for p in parts) or parts[:1] == [STATE_DIR]


class StateError(Exception):
    pass


def save_state(paths: Paths, state: State, source: str) -> None:
    """One entry a line: readable, and built by json's C encoder (with `indent` json falls
    back to pure Python, and asdict() deep-copies each entry: the state is saved several
    times a pass, and may hold thousands of versions)."""
    text = json.dumps({"format": STATE_FORMAT, "source": source})[:-1]
    tables: tuple[tuple[str, Mapping[str, Managed | ManagedFile | Refusal | LastFailure]], ...] = (
        ("versions", state.versions),
        ("files", state.files),
        ("refused", state.refused),
        ("failed", state.failed),
    )
    for key, table in tables:
        if table or key == "versions":
            lines = [f"{json.dumps(k)}: {json.dumps(_fields(v))}" for k, v in sorted(table.items())]
            text += f', "{key}": {{\n' + ",\n".join(lines) + "\n}"
    safepath.check(paths.dest, paths.state_dir)  # the temp file is made inside it
    atomic_write(paths.state_file, (text + "}\n").encode())


def _fields(m: Managed | ManagedFile | Refusal | LastFailure) -> dict[str, object]:
    return {name: getattr(m, name) for name in _FIELDS[type(m)]}
