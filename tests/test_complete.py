"""When a folder-form version's upload counts as complete: a table of listings, no I/O."""

from __future__ import annotations

import pytest

from gcs_model_sync.complete import Rules, Wait, saved_model_gap, shrunk, waiting
from gcs_model_sync.layout import Entry, Form, RemoteObject

T0_S = 1796126400.0  # 2026-12-01T12:00:00Z


def at(seconds: float) -> str:
    """An RFC 3339 time `seconds` after T0, with GCS's millisecond precision."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(T0_S + seconds, UTC).isoformat(timespec="milliseconds")


def entries(*files: tuple[str, float] | str, generation: int = 1) -> list[Entry]:
    out = []
    for f in files:
        rel, t = (f, 0.0) if isinstance(f, str) else f
        obj = RemoteObject(f"m/3/{rel}", generation, 10, updated=at(t))
        out.append(Entry(obj, "m", "3", Form.FOLDER, rel))
    return out


SAVED_MODEL = (
    "saved_model.pb",
    "variables/variables.index",
    "variables/variables.data-00000-of-00002",
    "variables/variables.data-00001-of-00002",
)


@pytest.mark.parametrize(
    ("paths", "gap"),
    [
        (SAVED_MODEL, None),
        (("saved_model.pb",), None),  # no variables: a graph-only model, left to --settle
        (("model.onnx", "config.pbtxt"), None),  # not a SavedModel
        (("saved_model.pb", "assets/vocab.txt"), None),
        (SAVED_MODEL[1:], "has variables/ but no saved_model.pb yet"),
        (
            ("saved_model.pb", "variables/variables.data-00000-of-00001"),
            "SavedModel without variables/variables.index yet",
        ),
        (
            ("saved_model.pb", "variables/variables.index"),
            "SavedModel without any variables/variables.data-* shard yet",
        ),
        (SAVED_MODEL[:3], "SavedModel missing variables/variables.data-00001-of-00002"),
        (
            (*SAVED_MODEL[:2], "variables/variables.data-00003-of-00004"),
            "SavedModel missing variables/variables.data-00000-of-00004 and 2 more",
        ),
        (("saved_model.pbtxt", *SAVED_MODEL[1:2], "variables/variables.data-00000-of-00001"), None),
    ],
)  # fmt: skip
def test_saved_model_needs_its_index_and_every_announced_shard(
    paths: tuple[str, ...], gap: str | None
) -> None:
    assert saved_model_gap(paths) == gap


def test_settle_is_judged_on_the_bucket_clock() -> None:
    files = entries(("saved_model.pb", 0), ("assets/a.txt", 30))
    rules = Rules(now=T0_S + 50, settle=60)
    assert waiting(files, rules) == (Wait.SETTLING, "settling: newest object 20s old, needs 60s")
    assert waiting(files, rules._replace(now=T0_S + 90)) is None
    assert waiting(files, rules._replace(settle=0)) is None


def test_an_object_from_the_bucket_future_is_settling_not_negative() -> None:
    files = entries(("a.bin", 5))
    assert waiting(files, Rules(now=T0_S, settle=1)) == (
        Wait.SETTLING,
        "settling: newest object 0s old, needs 1s",
    )


def test_ready_marker_must_exist_and_be_the_newest() -> None:
    rules = Rules(now=T0_S + 1000, settle=60, marker="_SUCCESS")
    assert waiting(entries("a.bin"), rules) == (
        Wait.MARKER,
        "waiting for its ready marker _SUCCESS",
    )
    late = entries(("_SUCCESS", 10), ("a.bin", 20))
    assert waiting(late, rules) == (Wait.MARKER, "a.bin is newer than its ready marker _SUCCESS")
    assert waiting(entries(("a.bin", 10), ("_SUCCESS", 20)), rules) is None


def test_marker_then_completeness_then_settle() -> None:
    files = entries(("saved_model.pb", 0), ("variables/variables.index", 0), ("_SUCCESS", 1))
    rules = Rules(now=T0_S + 2, settle=60, marker="_SUCCESS")
    found = waiting(files, rules)
    assert found is not None
    assert found[0] is Wait.INCOMPLETE


def test_a_strict_part_of_the_installed_objects_is_a_delete_in_progress() -> None:
    installed = {"saved_model.pb": 1, "variables/variables.index": 1, "assets/a": 1}
    left = entries("saved_model.pb", "assets/a")
    reason = shrunk(left, installed)
    assert reason is not None
    assert reason.startswith("lost 1 of its 3 objects in the bucket")
    assert shrunk(entries(*installed), installed) is None  # all there
    assert shrunk(entries("saved_model.pb", generation=2), installed) is None  # re-upload
    assert shrunk(left, None) is None  # installed before objects were recorded


def test_times_of_different_widths_are_compared_as_times() -> None:
    """fake-gcs-server trims trailing zeros: "30.5Z" sorts after "30.53Z" as text."""
    files = entries("a", "b")
    files[0] = files[0]._replace(obj=files[0].obj._replace(updated="2026-12-01T12:00:30.5Z"))
    files[1] = files[1]._replace(obj=files[1].obj._replace(updated="2026-12-01T12:00:30.53Z"))
    found = waiting(files, Rules(now=T0_S + 31.52, settle=1))
    assert found is not None
    assert found[0] is Wait.SETTLING
