"""What is on disk: published version folders, the state file, and our scratch space."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from gcs_model_sync import safepath
from gcs_model_sync.extract import DIR_MODE, set_mode
from gcs_model_sync.layout import STATE_DIR, VERSION_RE, servable, version_id

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


@dataclass(frozen=True, slots=True)
class LocalView:
    managed: dict[str, Managed]  # by version id
    on_disk: frozenset[str]  # version ids of numeric folders that exist
    files: dict[str, ManagedFile] = field(default_factory=dict)  # model files we wrote
    # "model/name" of every other entry directly inside a model folder (a file, a link, a
    # folder that is no version): where a model file would go, and whether something is there.
    entries: frozenset[str] = frozenset()
    refused: dict[str, Refusal] = field(default_factory=dict)
    dest: Path | None = None  # where the version folders are, to name them in messages
    # Paths below DEST of the symbolic links where a model's folder (or one above it) or a
    # version folder is: read through like any folder, never written through.
    links: frozenset[str] = frozenset()


class Paths:
    """Where things live under DEST. Scratch space sits beside the versions: same filesystem."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.state_dir = dest / STATE_DIR
        self.state_file = self.state_dir / "state.json"
        self.lock_file = self.state_dir / "lock"
        self.staging = self.state_dir / "staging"
        self.partial = self.state_dir / "partial"  # resumable downloads: kept across passes
        self.trash = self.state_dir / "trash"

    def version_dir(self, model: str, version: str) -> Path:
        return self.dest / version_id(model, version)

    @property
    def own(self) -> tuple[Path, ...]:
        """What the tool keeps under DEST: never reached through a symbolic link."""
        return (
            self.state_dir, self.staging, self.trash, self.partial, self.state_file,
            self.lock_file,
        )  # fmt: skip

    def ensure(self) -> None:
        """Make DEST and the tool's folders; OwnFolderLinked when one of them is a link."""
        make_dirs(self.dest)
        safepath.check_own(self.dest, self.own)
        for d in (self.state_dir, self.staging, self.trash, self.partial):
            d.mkdir(exist_ok=True)  # ours alone: the umask may keep others out


def make_dirs(path: Path) -> None:
    """`mkdir -p` whose new folders are 0755 whatever the umask, so that a model server
    running as another user can reach the versions; existing folders keep their mode."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        set_mode(d, DIR_MODE)


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


def _escapes(parts: list[str]) -> bool:
    """A path from the state file that could reach outside DEST, or into our own state."""
    return any(p in ("", ".", "..") or "\x00" in p for p in parts) or parts[:1] == [STATE_DIR]


class StateError(Exception):
    pass


def save_state(paths: Paths, state: State, source: str) -> None:
    """One entry a line: readable, and built by json's C encoder (with `indent` json
    falls back to pure Python; with asdict() a save of 1,000 versions took 150 ms)."""
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


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Readers see the old file or the new one, never a torn write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets us open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_dirs(dirs: Iterable[Path], dest: Path) -> None:
    """Make renames and new folders under `dest` durable: one syncfs(2) on Linux, elsewhere
    an fsync of each folder and of every folder between it and `dest`."""
    todo: set[Path] = set()
    for d in dirs:
        todo.add(d)
        todo.update(p for p in d.parents if p == dest or dest in p.parents)
    if not todo or _syncfs(dest):
        return
    for d in sorted(todo, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)


def sync_trees(roots: list[Path]) -> None:
    """Make staged versions durable before they are renamed into place.

    Linux: one syncfs(2) for the file system: one journal commit for all of them, instead of
    an fsync per file (10,000 small files cost seconds of fsyncs). Elsewhere: fsync every
    file and folder.
    """
    if roots and _syncfs(roots[0]):
        return
    for root in roots:
        _fsync_tree(root)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def _syncfs(path: Path) -> bool:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "syncfs"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return bool(libc.syncfs(fd) == 0)
    finally:
        os.close(fd)


def scan(paths: Paths, models: Iterable[str], state: State) -> LocalView:
    """List version folders of the given models, and what else sits directly in each model
    folder (where model files go); never walks inside a version. A folder numbered beyond
    what a model server reads is no version: one of the other entries. A model or version
    folder that is a symbolic link is listed through (read as a model server reads it) and
    named in `links`, so that nothing is written or deleted through it."""
    found, entries, links = set(), set(), set()
    owners = {m.model for m in state.versions.values()} | {f.model for f in state.files.values()}
    for model in set(models) | owners:
        if link := safepath.linked(paths.dest, model):
            links.add(link.relative_to(paths.dest).as_posix())
        try:
            with os.scandir(paths.dest / model if model else paths.dest) as it:
                for de in it:
                    if VERSION_RE.fullmatch(de.name) and de.is_symlink():
                        links.add(version_id(model, de.name))  # a dangling one too
                    if VERSION_RE.fullmatch(de.name) and servable(de.name) and de.is_dir():
                        found.add(version_id(model, de.name))
                    elif model:
                        entries.add(f"{model}/{de.name}")
        except (FileNotFoundError, NotADirectoryError):
            continue
    return LocalView(
        dict(state.versions), frozenset(found), dict(state.files), frozenset(entries),
        dict(state.refused), paths.dest, frozenset(links),
    )  # fmt: skip


def clean_scratch(paths: Paths) -> int:
    """Remove staging and trash left by a killed run; safe because we hold the lock."""
    removed = 0
    safepath.check_own(paths.dest, (paths.staging, paths.trash))
    for d in (paths.staging, paths.trash):
        if not d.is_dir():
            continue
        for child in d.iterdir():
            remove_tree(child)
            removed += 1
    return removed


def remove_tree(path: Path) -> None:
    """Remove a folder or a file; a symbolic link is removed itself, never what it points
    to (rmtree does not follow the links inside a tree either)."""
    try:
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return
    if is_dir:
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
