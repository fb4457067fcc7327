"""Durable writes and removals: atomic files, fsync/syncfs, scratch clean-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gcs_model_sync.local import durability
from gcs_model_sync.local.durability import atomic_write, clean_scratch, remove_tree
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.safepath import OwnFolderLinked
from gcs_model_sync.local.state import (
    State,
    save_state,
)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["file.json"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.json"
    atomic_write(target, b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(durability.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.json"]


def _mk(base: Path, *rels: str) -> None:
    for rel in rels:
        (base / rel).mkdir(parents=True, exist_ok=True)


def test_clean_scratch_empties_staging_and_trash(paths: Paths) -> None:
    _mk(paths.staging, "m_1.abc/tree/variables", "m_2.def")
    (paths.staging / "m_1.abc" / "tree" / "variables" / "v").write_text("x")
    (paths.staging / "stray-file").write_text("x")
    _mk(paths.trash, "0001.123")
    (paths.trash / "link").symlink_to(paths.dest / "keep")
    _mk(paths.dest, "keep/1")
    (paths.dest / "keep" / "1" / "f").write_text("keep me")
    save_state(paths, State({}), "gs://b/")

    assert clean_scratch(paths) == (3, 2)  # staging: two trees and a file; trash: two
    assert list(paths.staging.iterdir()) == []
    assert list(paths.trash.iterdir()) == []
    assert (paths.dest / "keep" / "1" / "f").read_text() == "keep me"  # not through the link
    assert paths.state_file.exists()
    assert clean_scratch(paths) == (0, 0)


def test_clean_scratch_without_scratch_folders(tmp_path: Path) -> None:
    assert clean_scratch(Paths(tmp_path / "never-created")) == (0, 0)


def test_remove_tree_handles_folders_files_links_and_nothing(tmp_path: Path) -> None:
    _mk(tmp_path, "d/e")
    (tmp_path / "d" / "e" / "f").write_text("x")
    (tmp_path / "file").write_text("x")
    _mk(tmp_path, "target")
    (tmp_path / "target" / "t").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for name in ("d", "file", "link", "missing"):
        remove_tree(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == ["target"]
    assert (tmp_path / "target" / "t").read_text() == "x"


def test_sync_trees_fsyncs_every_file_and_folder_where_syncfs_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gcs_model_sync.local import durability

    for root in ("a", "b"):
        (tmp_path / root / "variables").mkdir(parents=True)
        (tmp_path / root / "saved_model.pb").write_bytes(b"pb")
        (tmp_path / root / "variables" / "v").write_bytes(b"v")
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(durability, "_syncfs", lambda _path: False)
    monkeypatch.setattr(
        durability.os,
        "fsync",
        lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1],
    )
    durability.sync_trees([tmp_path / "a", tmp_path / "b"])
    for root in ("a", "b"):
        base = tmp_path / root
        assert {
            str(base),
            str(base / "variables"),
            str(base / "saved_model.pb"),
            str(base / "variables" / "v"),
        } <= set(synced)


def test_sync_trees_uses_one_syncfs_on_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gcs_model_sync.local import durability

    calls: list[Path] = []
    monkeypatch.setattr(durability, "_syncfs", lambda path: calls.append(path) or True)
    durability.sync_trees([tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    assert calls == [tmp_path / "a"]


def test_sync_dirs_uses_one_syncfs_on_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(durability, "_syncfs", lambda path: calls.append(path) or True)
    durability.sync_dirs({tmp_path / "a", tmp_path / "b" / "c"}, tmp_path)
    assert calls == [tmp_path]
    durability.sync_dirs(set(), tmp_path)
    assert calls == [tmp_path]  # nothing renamed: nothing to sync


def test_sync_dirs_fsyncs_each_folder_up_to_dest_where_syncfs_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "models"
    (dest / "a" / "b").mkdir(parents=True)
    (dest / "c").mkdir()
    synced: list[Path] = []
    monkeypatch.setattr(durability, "_syncfs", lambda _path: False)
    monkeypatch.setattr(durability, "fsync_dir", synced.append)
    durability.sync_dirs({dest / "a" / "b", dest / "c"}, dest)
    assert sorted(synced) == sorted([dest / "a" / "b", dest / "a", dest / "c", dest])
    assert synced.index(dest / "a" / "b") < synced.index(dest / "a")  # children first


def test_clean_scratch_refuses_a_linked_trash_and_empties_nothing(
    paths: Paths, tmp_path: Path
) -> None:
    _mk(tmp_path, "outside/kept")
    paths.trash.rmdir()
    paths.trash.symlink_to(tmp_path / "outside")
    with pytest.raises(OwnFolderLinked):
        clean_scratch(paths)
    assert (tmp_path / "outside" / "kept").is_dir()


def test_remove_tree_of_a_link_to_a_folder_removes_the_link_only(tmp_path: Path) -> None:
    _mk(tmp_path, "target/deep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    remove_tree(tmp_path / "link")
    remove_tree(tmp_path / "dangling")
    assert sorted(os.listdir(tmp_path)) == ["target"]
    assert (tmp_path / "target" / "deep").is_dir()
