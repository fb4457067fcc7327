"""Symbolic links below DEST are never followed to write or delete: nothing outside DEST is
touched, through the real CLI. DEST itself may be a link (a mount made that way)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Sync
from tests.support.models import sample_files

STATE = ".gcs-model-sync"


def elsewhere(sync: Sync, name: str, files: dict[str, bytes]) -> Path:
    """A folder outside DEST holding `files` (relative path -> bytes)."""
    root = sync.dest.parent / "outside" / name
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    root.mkdir(parents=True, exist_ok=True)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def naming(stderr: str, path: Path) -> list[str]:
    return [line for line in stderr.splitlines() if str(path) in line and "symbolic link" in line]


def test_a_symlinked_model_folder_is_never_pruned_through_and_the_rest_of_the_pass_goes_on(
    sync: Sync,
) -> None:
    b = sync.bucket
    for rel in ("m/1.zip", "m/2.zip", "n/1.zip"):
        b.put_zip(sync.key(rel), sample_files(rel))
    assert sync.once().returncode == 0
    # DEST/m moves elsewhere and a link takes its place; a precious file sits in its "1".
    outside = sync.dest.parent / "outside" / "m"
    outside.parent.mkdir()
    (sync.dest / "m").rename(outside)
    (sync.dest / "m").symlink_to(outside)
    (outside / "1" / "precious.txt").write_bytes(b"precious")
    b.delete(sync.key("m/1.zip"))
    b.delete(sync.key("n/1.zip"))
    b.put_zip(sync.key("n/2.zip"), sample_files("n2"))

    result = sync.once()
    again = sync.once()

    assert (outside / "1" / "precious.txt").read_bytes() == b"precious"
    assert result.returncode == 1, result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["1", "2"]
    assert len(naming(result.stderr, sync.dest / "m")) == 1, result.stderr
    assert (sync.dest / "m").is_symlink()
    assert sync.versions("n") == ["2"]  # another model's install and prune go on
    assert again.returncode == 1
    assert (outside / "1" / "precious.txt").read_bytes() == b"precious"
    assert not list((sync.dest / STATE / "trash").iterdir())


def test_plan_and_status_say_what_a_symlinked_model_folder_refuses(sync: Sync) -> None:
    """plan prints what once refuses (and exits 1 as once does); status is not 'in sync'."""
    import json

    link = sync.dest / "m"
    outside = elsewhere(sync, "target", {})
    sync.dest.mkdir()
    link.symlink_to(outside)
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("n/1.zip"), sample_files("n"))

    plan = sync.run("plan", "--output", "json")
    status = sync.run("status", "--output", "json")

    assert plan.returncode == 1, plan.stderr
    refusals = [a for a in json.loads(plan.stdout)["actions"] if a["action"] == "refuse"]
    assert [(a["model"], a["state"]) for a in refusals] == [("m", "link")]
    assert str(link) in refusals[0]["reason"]
    assert "install m/1" in refusals[0]["reason"]
    models = {m["model"]: m for m in json.loads(status.stdout)["models"]}
    assert status.returncode == 0, status.stderr
    assert not models["m"]["in_sync"]
    assert models["m"]["bucket"] == ["1"]
    assert [e["action"] for e in models["m"]["pending"]] == ["hold", "refuse"]
    text = sync.run("status")
    assert "refused" in next(line for line in text.stdout.splitlines() if line.startswith("m "))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("model", ["m", "team/ranker"])
def test_an_install_below_a_symlinked_model_folder_writes_nothing_outside_dest(
    sync: Sync, model: str
) -> None:
    link = sync.dest / model.split("/")[0]
    outside = elsewhere(sync, "target", {})
    sync.dest.mkdir()
    link.symlink_to(outside)
    sync.bucket.put_zip(sync.key(f"{model}/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("n/1.zip"), sample_files("n"))

    result = sync.once()

    assert list(outside.iterdir()) == []
    assert result.returncode == 1, result.stderr
    assert len(naming(result.stderr, link)) == 1, result.stderr
    assert sync.version("n/1") == sample_files("n")


@pytest.mark.parametrize("folder", ["staging", "trash", "partial"])
def test_a_symlinked_folder_of_the_tool_refuses_the_pass_and_deletes_nothing_through_it(
    sync: Sync, folder: str
) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    link = sync.dest / STATE / folder
    link.rmdir()
    outside = elsewhere(sync, folder, {"precious.txt": b"precious", "sub/deep.bin": b"deep"})
    link.symlink_to(outside)
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))

    result = sync.once()

    assert tree(outside) == {"precious.txt": b"precious", "sub/deep.bin": b"deep"}
    assert result.returncode == 1, result.stderr
    lines = naming(result.stderr, link)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sync.versions("m") == ["1"]  # refused before anything was written


@pytest.mark.parametrize("name", ["lock", "state.json"])
def test_a_symlinked_lock_or_state_file_is_refused_and_its_target_left_unchanged(
    sync: Sync, name: str
) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    link = sync.dest / STATE / name
    link.unlink()
    target = elsewhere(sync, "files", {name: b"precious\n"}) / name
    link.symlink_to(target)
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))

    result = sync.once()

    assert target.read_bytes() == b"precious\n"
    assert result.returncode == 1, result.stderr
    assert link.is_symlink()
    assert len(naming(result.stderr, link)) == 1, result.stderr
    assert sync.versions("m") == ["1"]


def test_a_symlinked_version_folder_nobody_lists_is_left_alone(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    outside = elsewhere(sync, "v3", {"saved_model.pb": b"mine"})
    (sync.dest / "m").mkdir(parents=True)
    (sync.dest / "m" / "3").symlink_to(outside)

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert (sync.dest / "m" / "3").is_symlink()
    assert tree(outside) == {"saved_model.pb": b"mine"}


@pytest.mark.parametrize("bucket_has_it", [True, False], ids=["changed", "gone"])
def test_a_managed_version_folder_replaced_by_a_symlink_is_neither_replaced_nor_pruned(
    sync: Sync, bucket_has_it: bool
) -> None:
    """Installed by us, then swapped for a link: the link and its target stay; one line
    names it; the pass fails."""
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("b"))
    assert sync.once().returncode == 0
    outside = elsewhere(sync, "v3", {"saved_model.pb": b"mine"})
    link = sync.dest / "m" / "3"
    for p in sorted(link.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    link.rmdir()
    link.symlink_to(outside)
    if bucket_has_it:
        sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("new"))
    else:
        sync.bucket.delete(sync.key("m/3.zip"))

    result = sync.once()

    assert link.is_symlink()
    assert tree(outside) == {"saved_model.pb": b"mine"}
    assert result.returncode == 1, result.stderr
    assert tree(outside) == {"saved_model.pb": b"mine"}
    assert len(naming(result.stderr, link)) == 1, result.stderr


def test_a_symlinked_model_folder_gets_no_model_file_written_through_it(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once("--model-files").returncode == 0
    outside = elsewhere(sync, "m", {})
    (sync.dest / "m" / "1").rename(outside / "1")
    (sync.dest / "m").rmdir()
    (sync.dest / "m").symlink_to(outside)
    sync.bucket.put(sync.key("m/config.pbtxt"), b'name: "m"')

    result = sync.once("--model-files")

    assert sorted(p.name for p in outside.iterdir()) == ["1"]
    assert result.returncode == 1, result.stderr
    assert len(naming(result.stderr, sync.dest / "m")) == 1, result.stderr


def test_dest_itself_may_be_a_symlink(sync: Sync) -> None:
    real = elsewhere(sync, "real-dest", {})
    sync.dest.symlink_to(real)
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/1.zip"))

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (real / "m").iterdir()) == ["2"]
    assert tree(real / "m" / "2") == sample_files("b")
