"""The local side: the state file, atomic writes, scanning version folders, scratch space."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gcs_model_sync import local
from gcs_model_sync.layout import STATE_DIR
from gcs_model_sync.local import (
    Managed,
    ManagedFile,
    Paths,
    Refusal,
    State,
    StateError,
    atomic_write,
    clean_scratch,
    load_state,
    remove_tree,
    save_state,
    scan,
)
from gcs_model_sync.safepath import OwnFolderLinked


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths(tmp_path / "models")
    p.ensure()
    return p


def test_paths_live_under_dest(tmp_path: Path) -> None:
    p = Paths(tmp_path / "d")
    assert p.state_dir == tmp_path / "d" / STATE_DIR
    assert p.state_file.parent == p.staging.parent == p.trash.parent == p.state_dir
    assert p.version_dir("m/x", "0002") == tmp_path / "d" / "m" / "x" / "0002"
    assert p.version_dir("", "0002") == tmp_path / "d" / "0002"
    p.ensure()
    assert p.staging.is_dir()
    assert p.trash.is_dir()
    p.ensure()  # twice is fine


def test_state_round_trip(paths: Paths) -> None:
    managed = {
        "resnet/0002": Managed("resnet", "0002", "zip:17", 1234, 1700000000.5),
        "0007": Managed("", "0007", "a" * 32, 0, 0.0),
        "a/b/1": Managed("a/b", "1", "pending"),
    }
    save_state(paths, State(managed), "gs://bkt/prefix/")
    assert load_state(paths).versions == managed
    doc = json.loads(paths.state_file.read_text())
    assert doc["format"] == local.STATE_FORMAT
    assert doc["source"] == "gs://bkt/prefix/"
    assert list(doc["versions"]) == sorted(managed)


def test_missing_state_is_empty(paths: Paths) -> None:
    assert load_state(paths).versions == {}


def test_saving_replaces_the_previous_state(paths: Paths) -> None:
    save_state(paths, State({"1": Managed("", "1", "x")}), "gs://b/")
    save_state(paths, State({"2": Managed("", "2", "y")}), "gs://b/")
    assert load_state(paths).versions == {"2": Managed("", "2", "y")}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        '{"versions": {"1": {"model": "", "version": "1"',
        '{"versions": {"1": {"model": "", "version": "1", "fingerprint": "x", "extra": 1}}}',
        '{"versions": {"1": {"model": ""}}}',
        '{"versions": {"1": 5}}',
        '{"versions": [1, 2]}',
        '{"versions": "1"}',
        "[]",
        "null",
        '"state"',
        '{"versions": {"1": {"model": 1, "version": 2, "fingerprint": 3}}}',
        '{"versions": {"x": {"model": "..", "version": "1", "fingerprint": "f"}}}',
        '{"versions": {"x": {"model": "m", "version": "../..", "fingerprint": "f"}}}',
        '{"versions": {"x": {"model": "/etc", "version": "1", "fingerprint": "f"}}}',
        '{"versions": {"x": {"model": "m", "version": "v1", "fingerprint": "f"}}}',
    ],
)
def test_corrupt_state_raises_state_error(paths: Paths, text: str) -> None:
    paths.state_file.write_text(text)
    with pytest.raises(StateError, match=r"state\.json"):
        load_state(paths)


def test_undecodable_state_raises_state_error(paths: Paths) -> None:
    paths.state_file.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StateError):
        load_state(paths)


def test_state_without_versions_is_empty(paths: Paths) -> None:
    paths.state_file.write_text('{"format": 1, "source": "gs://b/"}')
    assert load_state(paths).versions == {}


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

    monkeypatch.setattr(local.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.json"]


def test_save_state_leaves_no_temp_files(paths: Paths) -> None:
    for n in range(3):
        save_state(paths, State({str(n): Managed("", str(n), "f")}), "gs://b/")
    assert sorted(os.listdir(paths.state_dir)) == ["partial", "staging", "state.json", "trash"]


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

    monkeypatch.setattr(local.os, "scandir", spy)
    view = scan(paths, ["m", "n"], State())
    assert view.on_disk == frozenset({"m/1", "m/2", "n/3"})
    assert sorted(scanned) == [paths.dest / "m", paths.dest / "n"]


def test_clean_scratch_empties_staging_and_trash(paths: Paths) -> None:
    _mk(paths.staging, "m_1.abc/tree/variables", "m_2.def")
    (paths.staging / "m_1.abc" / "tree" / "variables" / "v").write_text("x")
    (paths.staging / "stray-file").write_text("x")
    _mk(paths.trash, "0001.123")
    (paths.trash / "link").symlink_to(paths.dest / "keep")
    _mk(paths.dest, "keep/1")
    (paths.dest / "keep" / "1" / "f").write_text("keep me")
    save_state(paths, State({}), "gs://b/")

    assert clean_scratch(paths) == 5
    assert list(paths.staging.iterdir()) == []
    assert list(paths.trash.iterdir()) == []
    assert (paths.dest / "keep" / "1" / "f").read_text() == "keep me"  # not through the link
    assert paths.state_file.exists()
    assert clean_scratch(paths) == 0


def test_clean_scratch_without_scratch_folders(tmp_path: Path) -> None:
    assert clean_scratch(Paths(tmp_path / "never-created")) == 0


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


def test_managed_id() -> None:
    assert Managed("m", "0002", "f").id == "m/0002"
    assert Managed("", "0002", "f").id == "0002"


def test_sync_trees_fsyncs_every_file_and_folder_where_syncfs_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gcs_model_sync import local

    for root in ("a", "b"):
        (tmp_path / root / "variables").mkdir(parents=True)
        (tmp_path / root / "saved_model.pb").write_bytes(b"pb")
        (tmp_path / root / "variables" / "v").write_bytes(b"v")
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(local, "_syncfs", lambda _path: False)
    monkeypatch.setattr(
        local.os,
        "fsync",
        lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1],
    )
    local.sync_trees([tmp_path / "a", tmp_path / "b"])
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
    from gcs_model_sync import local

    calls: list[Path] = []
    monkeypatch.setattr(local, "_syncfs", lambda path: calls.append(path) or True)
    local.sync_trees([tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    assert calls == [tmp_path / "a"]


def test_state_file_has_one_version_a_line(paths: Paths) -> None:
    """Readable with `cat` and `grep`, though written without json's slow indenting."""
    managed = {f"m/{i:04d}": Managed("m", f"{i:04d}", f"zip:{i}", i) for i in range(1, 4)}
    save_state(paths, State(managed), "gs://b/p/")
    lines = paths.state_file.read_text().splitlines()
    assert [line.split(":")[0] for line in lines[1:4]] == ['"m/0001"', '"m/0002"', '"m/0003"']
    assert load_state(paths).versions == managed


def test_sync_dirs_uses_one_syncfs_on_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(local, "_syncfs", lambda path: calls.append(path) or True)
    local.sync_dirs({tmp_path / "a", tmp_path / "b" / "c"}, tmp_path)
    assert calls == [tmp_path]
    local.sync_dirs(set(), tmp_path)
    assert calls == [tmp_path]  # nothing renamed: nothing to sync


def test_sync_dirs_fsyncs_each_folder_up_to_dest_where_syncfs_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "models"
    (dest / "a" / "b").mkdir(parents=True)
    (dest / "c").mkdir()
    synced: list[Path] = []
    monkeypatch.setattr(local, "_syncfs", lambda _path: False)
    monkeypatch.setattr(local, "fsync_dir", synced.append)
    local.sync_dirs({dest / "a" / "b", dest / "c"}, dest)
    assert sorted(synced) == sorted([dest / "a" / "b", dest / "a", dest / "c", dest])
    assert synced.index(dest / "a" / "b") < synced.index(dest / "a")  # children first


def test_state_round_trip_with_model_files_and_refusals(paths: Paths) -> None:
    state = State(
        {"m/1": Managed("m", "1", "zip:3")},
        {"m/config.pbtxt": ManagedFile("m", "config.pbtxt", 17, 40)},
        {"m/2": Refusal("zip:9", "check --strict", "gs://b/m/2.zip: --verify refused m/2")},
    )
    save_state(paths, state, "gs://b/")
    assert load_state(paths) == state


@pytest.mark.parametrize(
    "entry",
    [
        {"model": "m", "name": "../escape", "generation": 1},
        {"model": "m", "name": "a/b", "generation": 1},
        {"model": "../m", "name": "x", "generation": 1},
        {"model": STATE_DIR, "name": "x", "generation": 1},
        {"model": "m", "name": "0003", "generation": 1},  # a version folder's name
        {"model": "m", "name": "x", "generation": "1"},
    ],
)
def test_a_model_file_entry_that_could_reach_elsewhere_makes_the_state_unreadable(
    paths: Paths, entry: dict[str, object]
) -> None:
    doc = {"format": 1, "source": "gs://b/", "versions": {}, "files": {"k": entry}}
    atomic_write(paths.state_file, json.dumps(doc).encode())
    with pytest.raises(StateError):
        load_state(paths)


# --- symbolic links below DEST ---------------------------------------------------------------


@pytest.mark.parametrize("name", [STATE_DIR, f"{STATE_DIR}/staging", f"{STATE_DIR}/trash",
                                  f"{STATE_DIR}/partial", f"{STATE_DIR}/state.json",
                                  f"{STATE_DIR}/lock"])  # fmt: skip
def test_ensure_refuses_a_linked_folder_or_file_of_its_own_and_makes_nothing_through_it(
    tmp_path: Path, name: str
) -> None:
    p = Paths(tmp_path / "models")
    (p.dest / name).parent.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (p.dest / name).symlink_to(outside)
    with pytest.raises(OwnFolderLinked) as caught:
        p.ensure()
    assert str(caught.value).startswith(f"{p.dest / name}: a symbolic link")
    assert list(outside.iterdir()) == []


def test_ensure_follows_dest_itself_when_it_is_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "models").symlink_to(tmp_path / "real")
    Paths(tmp_path / "models").ensure()
    assert (tmp_path / "real" / STATE_DIR / "staging").is_dir()


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


def test_clean_scratch_refuses_a_linked_trash_and_empties_nothing(
    paths: Paths, tmp_path: Path
) -> None:
    _mk(tmp_path, "outside/kept")
    paths.trash.rmdir()
    paths.trash.symlink_to(tmp_path / "outside")
    with pytest.raises(OwnFolderLinked):
        clean_scratch(paths)
    assert (tmp_path / "outside" / "kept").is_dir()


def test_a_linked_state_file_is_not_read(paths: Paths, tmp_path: Path) -> None:
    """Whoever placed it would decide which folders are ours, hence deleted."""
    claim = {"format": 1, "versions": {"m/1": {"model": "m", "version": "1", "fingerprint": "f"}}}
    (tmp_path / "forged.json").write_text(json.dumps(claim))
    paths.state_file.symlink_to(tmp_path / "forged.json")
    with pytest.raises(StateError, match="symbolic link"):
        load_state(paths)


def test_the_state_is_never_saved_through_a_linked_state_folder(tmp_path: Path) -> None:
    p = Paths(tmp_path / "models")
    _mk(tmp_path, "models", "outside")
    p.state_dir.symlink_to(tmp_path / "outside")
    with pytest.raises(OSError, match="symbolic link"):
        save_state(p, State(), "gs://b/p")
    assert list((tmp_path / "outside").iterdir()) == []


def test_remove_tree_of_a_link_to_a_folder_removes_the_link_only(tmp_path: Path) -> None:
    _mk(tmp_path, "target/deep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    remove_tree(tmp_path / "link")
    remove_tree(tmp_path / "dangling")
    assert sorted(os.listdir(tmp_path)) == ["target"]
    assert (tmp_path / "target" / "deep").is_dir()


def test_the_last_failure_of_each_version_round_trips_and_a_bad_one_is_refused(
    paths: Paths,
) -> None:
    from gcs_model_sync.local import LastFailure

    state = State(failed={"m/8": LastFailure("zip:4", "gs://b/m/8.zip: not a zip file")})
    save_state(paths, state, "gs://b/")
    assert load_state(paths) == state
    doc = {
        "format": 1,
        "source": "gs://b/",
        "versions": {},
        "failed": {"m/8": {"fingerprint": 4, "message": "x"}},
    }
    atomic_write(paths.state_file, json.dumps(doc).encode())
    with pytest.raises(StateError):
        load_state(paths)
