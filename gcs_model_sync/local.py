"""What is on disk: published version folders, the state file, and our scratch space."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from gcs_model_sync.extract import DIR_MODE, set_mode
from gcs_model_sync.layout import STATE_DIR, VERSION_RE, version_id

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


_MANAGED_FIELDS = tuple(f.name for f in fields(Managed))


@dataclass(frozen=True, slots=True)
class LocalView:
    managed: dict[str, Managed]  # by version id
    on_disk: frozenset[str]  # version ids of numeric folders that exist


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

    def ensure(self) -> None:
        make_dirs(self.dest)
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


def load_state(paths: Paths) -> dict[str, Managed]:
    try:
        raw = json.loads(paths.state_file.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # A damaged state file must not make us delete anything: forget ownership instead.
        raise StateError(f"{paths.state_file}: unreadable state file ({exc})") from exc
    try:
        return _parse_state(raw)
    except (TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"{paths.state_file}: unreadable state file ({exc})") from exc


def _parse_state(raw: object) -> dict[str, Managed]:
    """Trust nothing: a version id from here decides what may be deleted under DEST."""
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
        parts = m.model.split("/") if m.model else []
        if (
            not VERSION_RE.fullmatch(m.version)
            or any(p in ("", ".", "..") or "\x00" in p for p in parts)
            or parts[:1] == [STATE_DIR]
        ):
            raise ValueError(f"bad entry {item!r}")
        managed[m.id] = m
    return managed


class StateError(Exception):
    pass


def save_state(paths: Paths, managed: dict[str, Managed], source: str) -> None:
    """One version a line: readable, and built by json's C encoder (with `indent` json
    falls back to pure Python; with asdict() a save of 1,000 versions took 150 ms)."""
    head = json.dumps({"format": STATE_FORMAT, "source": source})[:-1]
    lines = [f"{json.dumps(k)}: {json.dumps(_fields(v))}" for k, v in sorted(managed.items())]
    text = head + ', "versions": {\n' + ",\n".join(lines) + "\n}}\n"
    atomic_write(paths.state_file, text.encode())


def _fields(m: Managed) -> dict[str, object]:
    return {name: getattr(m, name) for name in _MANAGED_FIELDS}


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


def scan(paths: Paths, models: Iterable[str], managed: dict[str, Managed]) -> LocalView:
    """List version folders of the given models; never walks inside a version."""
    found = set()
    for model in set(models) | {m.model for m in managed.values()}:
        try:
            with os.scandir(paths.dest / model if model else paths.dest) as it:
                for de in it:
                    if VERSION_RE.fullmatch(de.name) and de.is_dir():
                        found.add(version_id(model, de.name))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return LocalView(managed=dict(managed), on_disk=frozenset(found))


def clean_scratch(paths: Paths) -> int:
    """Remove staging and trash left by a killed run; safe because we hold the lock."""
    removed = 0
    for d in (paths.staging, paths.trash):
        if not d.is_dir():
            continue
        for child in d.iterdir():
            remove_tree(child)
            removed += 1
    return removed


def remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
