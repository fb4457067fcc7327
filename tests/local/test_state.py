"""The state file: round trips, and refusing anything that could reach elsewhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gcs_model_sync.layout import STATE_DIR
from gcs_model_sync.local.durability import atomic_write
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import (
    STATE_FORMAT,
    Managed,
    ManagedFile,
    Refusal,
    State,
    StateError,
    load_state,
    save_state,
)


def test_state_round_trip(paths: Paths) -> None:
    managed = {
        "resnet/0002": Managed("resnet", "0002", "zip:17", 1234, 1700000000.5),
        "0007": Managed("", "0007", "a" * 32, 0, 0.0),
        "a/b/1": Managed("a/b", "1", "pending"),
    }
    save_state(paths, State(managed), "gs://bkt/prefix/")
    assert load_state(paths).versions == managed
    doc = json.loads(paths.state_file.read_text())
    assert doc["format"] == STATE_FORMAT
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


def test_save_state_leaves_no_temp_files(paths: Paths) -> None:
    for n in range(3):
        save_state(paths, State({str(n): Managed("", str(n), "f")}), "gs://b/")
    assert sorted(os.listdir(paths.state_dir)) == ["partial", "staging", "state.json", "trash"]


def _mk(base: Path, *rels: str) -> None:
    for rel in rels:
        (base / rel).mkdir(parents=True, exist_ok=True)


def test_managed_id() -> None:
    assert Managed("m", "0002", "f").id == "m/0002"
    assert Managed("", "0002", "f").id == "0002"


def test_state_file_has_one_version_a_line(paths: Paths) -> None:
    """Readable with `cat` and `grep`, though written without json's slow indenting."""
    managed = {f"m/{i:04d}": Managed("m", f"{i:04d}", f"zip:{i}", i) for i in range(1, 4)}
    save_state(paths, State(managed), "gs://b/p/")
    lines = paths.state_file.read_text().splitlines()
    assert [line.split(":")[0] for line in lines[1:4]] == ['"m/0001"', '"m/0002"', '"m/0003"']
    assert load_state(paths).versions == managed


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


def test_the_last_failure_of_each_version_round_trips_and_a_bad_one_is_refused(
    paths: Paths,
) -> None:
    from gcs_model_sync.local.state import LastFailure

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


def test_recorded_sums_round_trip_and_one_that_could_reach_elsewhere_is_refused(
    paths: Paths,
) -> None:
    sums = {"a.bin": (5, "AAAAAA=="), "sub/b.bin": (7, "BBBBBB==")}
    m = Managed("m", "3", "fp", 12, 1.0, {"a.bin": 1, "sub/b.bin": 1}, sums)
    save_state(paths, State({m.id: m}), "gs://b/")
    assert load_state(paths).versions == {m.id: m}
    for bad in ({"../x": [1, "A"]}, {"a": [1]}, {"a": ["1", "A"]}, {"a": 1}, ["a"]):
        entry = {"model": "m", "version": "3", "fingerprint": "fp", "sums": bad}
        doc = {"format": 1, "source": "gs://b/", "versions": {"m/3": entry}}
        atomic_write(paths.state_file, json.dumps(doc).encode())
        with pytest.raises(StateError):
            load_state(paths)
