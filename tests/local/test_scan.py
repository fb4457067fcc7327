"""Scanning DEST: version folders, model-folder entries, symbolic links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gcs_model_sync.local import scan as scanning
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.scan import scan
from gcs_model_sync.local.state import (
    Managed,
    State,
)


def _mk(base: Path, *rels: str) -> None:
    for rel in rels:
        (base / rel).mkdir(parents=True, exist_ok=True)


def test_scan_lists_numeric_folders_of_the_given_models(paths: Paths) -> None:
    dest = paths.dest
    _mk(dest, "m/0001", "m/2", "m/latest", "m/v3", "m/1.5", "m/²", "other/7", "a/b/9")
    _mk(dest, "m/0001/0005", "m/0001/variables")  # inside a version: never looked at
    (dest / "m" / "0004").write_text("a file, not a version")
    (dest / "m" / "0006.zip").write_text("an archive someone left")
    view = scan(paths, ["m", "a/b", "gone"], State())
    assert view.on_disk == frozenset({"m/0001", "m/2", "a/b/9"})
    others = {"m/latest", "m/v3", "m/1.5", "m/²", "m/0004", "m/0006.zip"}
    assert view.entries == frozenset(others)  # where a model file would go


def test_scan_takes_a_folder_numbered_beyond_int64_for_no_version(paths: Paths) -> None:
    """TF Serving skips it: never served, so never a version to rank, prune or replace."""
    biggest = str(2**63 - 1)
    _mk(paths.dest, f"m/{biggest}", f"m/{2**63}", "m/99999999999999999999", f"m/0{biggest}")
    view = scan(paths, ["m"], State())
    assert view.on_disk == frozenset({f"m/{biggest}", f"m/0{biggest}"})
    assert view.entries == frozenset({f"m/{2**63}", "m/99999999999999999999"})


def test_scan_of_the_top_level_model(paths: Paths) -> None:
    _mk(paths.dest, "0001", "12", "m/3", "tmp")
    (paths.dest / "5").write_text("file")
    view = scan(paths, [""], State())
    assert view.on_disk == frozenset({"0001", "12"})  # never the state folder, never m/3


def test_scan_includes_models_only_the_state_knows(paths: Paths) -> None:
    _mk(paths.dest, "old/0001", "old/0002", "new/1")
    managed = {"old/0001": Managed("old", "0001", "f"), "ghost/1": Managed("ghost", "1", "f")}
    view = scan(paths, ["new"], State(managed))
    assert view.on_disk == frozenset({"old/0001", "old/0002", "new/1"})
    assert view.managed == managed
    assert view.managed is not managed  # a copy: the plan cannot change the caller's dict


def test_scan_ignores_a_model_path_that_is_a_file(paths: Paths) -> None:
    (paths.dest / "m").write_text("not a folder")
    assert scan(paths, ["m", "m/x"], State()).on_disk == frozenset()


def test_scan_never_descends_into_versions(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    _mk(paths.dest, "m/1/a/b/c", "m/2/d", "n/3")
    scanned = []
    real = os.scandir

    def spy(path: str | os.PathLike[str]) -> object:
        scanned.append(Path(path))
        return real(path)

    monkeypatch.setattr(scanning.os, "scandir", spy)
    view = scan(paths, ["m", "n"], State())
    assert view.on_disk == frozenset({"m/1", "m/2", "n/3"})
    assert sorted(scanned) == [paths.dest / "m", paths.dest / "n"]


def test_scan_names_linked_model_and_version_folders(paths: Paths, tmp_path: Path) -> None:
    _mk(tmp_path, "outside/1", "outside/2")
    _mk(paths.dest, "n/4", "plain/1")
    (paths.dest / "m").symlink_to(tmp_path / "outside")
    (paths.dest / "team").symlink_to(tmp_path / "outside")
    (paths.dest / "n" / "3").symlink_to(tmp_path / "outside" / "1")
    (paths.dest / "n" / "notes").symlink_to(tmp_path / "outside" / "2")  # no version: a file
    (paths.dest / "n" / "5").symlink_to(tmp_path / "nowhere")
    view = scan(paths, ["m", "team/ranker", "n", "plain"], State())
    assert view.links == {"m", "team", "n/3", "n/5"}
    # read through, as a model server reads them: what is there is known, never written
    assert view.on_disk == frozenset({"m/1", "m/2", "n/3", "n/4", "plain/1"})
