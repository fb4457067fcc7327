"""Publishing is one rename or one atomic swap; readers never see a missing or partial version."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from gcs_model_sync.install import publish as publish_mod
from gcs_model_sync.install.publish import exchange, publish, retire
from gcs_model_sync.local.safepath import LinkRefused


def make_version(path: Path, tag: str, n: int = 5) -> Path:
    """A folder of n files whose names and bytes carry `tag`."""
    (path / "variables").mkdir(parents=True)
    for i in range(n - 1):
        (path / f"{tag}-{i}.pb").write_text(f"{tag}:{i}")
    (path / "variables" / "v").write_text(tag)
    return path


def contents(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    dest = tmp_path / "models"
    staging = tmp_path / "models" / ".gcs-model-sync" / "staging"
    trash = tmp_path / "models" / ".gcs-model-sync" / "trash"
    staging.mkdir(parents=True)
    trash.mkdir()
    return dest, staging, trash


def trashed(trash: Path) -> list[dict[str, str] | str]:
    """What the trash holds: whole old trees (or a file) waiting for the next pass."""
    return [contents(p) if p.is_dir() else p.read_text() for p in sorted(trash.iterdir())]


def test_exchange_swaps_two_folders(tmp_path: Path) -> None:
    a = make_version(tmp_path / "a", "A")
    b = make_version(tmp_path / "b", "B")
    assert exchange(a, b) is True  # Linux renameat2 on this file system
    assert contents(a) == contents(make_version(tmp_path / "ref-b", "B"))
    assert contents(b) == contents(make_version(tmp_path / "ref-a", "A"))


def test_exchange_swaps_a_folder_and_a_file(tmp_path: Path) -> None:
    a = make_version(tmp_path / "a", "A")
    f = tmp_path / "f"
    f.write_text("file")
    assert exchange(a, f) is True
    assert a.read_text() == "file"
    assert f.is_dir()
    assert (f / "variables" / "v").read_text() == "A"


def test_exchange_with_a_missing_path_raises(tmp_path: Path) -> None:
    a = make_version(tmp_path / "a", "A")
    with pytest.raises(FileNotFoundError):
        exchange(a, tmp_path / "missing")
    assert (a / "variables" / "v").read_text() == "A"


def test_publish_into_a_missing_target(dirs: tuple[Path, Path, Path]) -> None:
    dest, staging, trash = dirs
    staged = make_version(staging / "w" / "tree", "A")
    expected = contents(staged)
    target = dest / "resnet" / "0001"  # the model folder does not exist yet either
    publish(staged, target, trash)
    assert contents(target) == expected
    assert not staged.exists()
    assert list(trash.iterdir()) == []


def test_publish_over_an_existing_version(dirs: tuple[Path, Path, Path]) -> None:
    dest, staging, trash = dirs
    target = make_version(dest / "m" / "0001", "OLD")
    staged = make_version(staging / "w" / "tree", "NEW")
    expected = contents(staged)
    old = contents(target)
    publish(staged, target, trash)
    assert contents(target) == expected
    assert not staged.exists()  # the old version was swapped here, then moved to the trash
    assert trashed(trash) == [old]  # whole, until the next pass empties the trash
    assert sorted(p.name for p in (dest / "m").iterdir()) == ["0001"]


def test_publish_over_an_empty_folder(dirs: tuple[Path, Path, Path]) -> None:
    dest, staging, trash = dirs
    target = dest / "0001"
    target.mkdir(parents=True)
    staged = make_version(staging / "w" / "tree", "NEW")
    publish(staged, target, trash)
    assert (target / "variables" / "v").read_text() == "NEW"


def test_publish_over_a_file(dirs: tuple[Path, Path, Path]) -> None:
    dest, staging, trash = dirs
    target = dest / "m" / "0001"
    target.parent.mkdir(parents=True)
    target.write_text("someone put a file here")
    staged = make_version(staging / "w" / "tree", "NEW")
    publish(staged, target, trash)
    assert target.is_dir()
    assert (target / "variables" / "v").read_text() == "NEW"
    assert not staged.exists()
    assert trashed(trash) == ["someone put a file here"]


@pytest.mark.parametrize("existing", ["folder", "file"])
def test_publish_falls_back_to_two_renames(
    dirs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch, existing: str
) -> None:
    calls = []

    def no_exchange(a: Path, b: Path) -> bool:
        calls.append((a, b))
        return False

    monkeypatch.setattr(publish_mod, "exchange", no_exchange)
    dest, staging, trash = dirs
    target = dest / "m" / "0001"
    if existing == "folder":
        make_version(target, "OLD")
    else:
        target.parent.mkdir(parents=True)
        target.write_text("file")
    staged = make_version(staging / "w" / "tree", "NEW")
    expected = contents(staged)
    old = contents(target) if existing == "folder" else "file"
    publish(staged, target, trash)
    assert calls == [(staged, target)]
    assert contents(target) == expected
    assert not staged.exists()
    assert trashed(trash) == [old]  # the old version waits, whole, in the trash


def test_publish_surfaces_other_errors(dirs: tuple[Path, Path, Path]) -> None:
    dest, _staging, trash = dirs
    with pytest.raises(FileNotFoundError):
        publish(dest / "no-such-staged-folder", dest / "0001", trash)
    assert not (dest / "0001").exists()


def test_retire_removes_a_version(dirs: tuple[Path, Path, Path]) -> None:
    dest, _staging, trash = dirs
    keep = make_version(dest / "m" / "0002", "KEEP")
    doomed = make_version(dest / "m" / "0001", "OLD")
    old = contents(doomed)
    retire(doomed, trash)
    assert not doomed.exists()
    assert trashed(trash) == [old]
    assert (keep / "variables" / "v").read_text() == "KEEP"
    assert sorted(p.name for p in (dest / "m").iterdir()) == ["0002"]


def test_retire_of_a_missing_version_raises(dirs: tuple[Path, Path, Path]) -> None:
    dest, _staging, trash = dirs
    with pytest.raises(FileNotFoundError):
        retire(dest / "m" / "0009", trash)


def test_readers_never_see_a_missing_or_partial_version(
    dirs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader polling the target (as TF Serving does) while it is replaced 50 times.

    Replaced trees wait in the trash for the next pass, so all 50 can be checked whole.
    """
    dest, staging, trash = dirs
    target = make_version(dest / "m" / "0001", "v0")
    problems: list[str] = []
    listings = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal listings
        while not done.is_set():
            try:
                names = os.listdir(target)
            except FileNotFoundError:
                problems.append("target missing")
                continue
            listings += 1
            tags = {n.split("-")[0] for n in names if n.endswith(".pb")}
            if len(names) != 5 or "variables" not in names or len(tags) != 1:
                problems.append(f"partial listing: {sorted(names)}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 51):
            publish(make_version(staging / f"w{i}" / "tree", f"v{i}"), target, trash)
    finally:
        done.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert problems == []
    assert listings > 0
    assert (target / "variables" / "v").read_text() == "v50"
    retired = list(trash.iterdir())
    assert len(retired) == 50
    assert {contents(p)["variables/v"] for p in retired} == {f"v{i}" for i in range(50)}


def test_a_reader_inside_the_replaced_version_keeps_a_whole_tree(
    dirs: tuple[Path, Path, Path],
) -> None:
    dest, staging, trash = dirs
    target = make_version(dest / "m" / "0001", "OLD")
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)  # a reader in the middle of a listing
    try:
        publish(make_version(staging / "w" / "tree", "NEW"), target, trash)
        assert (target / "variables" / "v").read_text() == "NEW"
        assert len(os.listdir(fd)) == 5
    finally:
        os.close(fd)


# --- never through a symbolic link below DEST ----------------------------------------------


def test_publish_refuses_a_linked_model_folder_and_writes_nothing_outside(
    dirs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    dest, staging, trash = dirs
    (tmp_path / "outside").mkdir()
    (dest / "m").symlink_to(tmp_path / "outside")
    content = make_version(staging / "tree", "A")
    with pytest.raises(LinkRefused) as caught:
        publish(content, dest / "m" / "1", trash)
    assert caught.value.filename == str(dest / "m")
    assert list((tmp_path / "outside").iterdir()) == []
    assert content.is_dir()  # still staged: the caller removes it


def test_publish_never_replaces_a_linked_version_folder(
    dirs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    dest, staging, trash = dirs
    outside = make_version(tmp_path / "outside", "MINE")
    (dest / "m").mkdir()
    (dest / "m" / "1").symlink_to(outside)
    with pytest.raises(LinkRefused):
        publish(make_version(staging / "tree", "A"), dest / "m" / "1", trash)
    assert (dest / "m" / "1").is_symlink()
    assert contents(outside) == contents(make_version(tmp_path / "ref", "MINE"))
    assert list(trash.iterdir()) == []


def test_retire_refuses_a_linked_model_folder_and_moves_nothing(
    dirs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    dest, _staging, trash = dirs
    outside = tmp_path / "outside"
    make_version(outside / "1", "MINE")
    (dest / "m").symlink_to(outside)
    with pytest.raises(LinkRefused):
        retire(dest / "m" / "1", trash)
    assert (outside / "1" / "variables" / "v").read_text() == "MINE"
    assert list(trash.iterdir()) == []


def test_retire_refuses_a_linked_trash(dirs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    dest, _staging, trash = dirs
    make_version(dest / "m" / "1", "A")
    (tmp_path / "outside").mkdir()
    trash.rmdir()
    trash.symlink_to(tmp_path / "outside")
    with pytest.raises(LinkRefused):
        retire(dest / "m" / "1", trash)
    assert (dest / "m" / "1").is_dir()
    assert list((tmp_path / "outside").iterdir()) == []
