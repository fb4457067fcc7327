"""What is on disk: the version folders and model-folder entries of the listed models."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gcs_model_sync.layout import VERSION_RE, servable, version_id
from gcs_model_sync.local import safepath
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import Managed, ManagedFile, Refusal, State


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
