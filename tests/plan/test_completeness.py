"""When a folder-form version's upload counts as complete: a table of listings, no I/O."""

from __future__ import annotations

import pytest

from gcs_model_sync.layout import Entry, Form, RemoteObject, group
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.plan.companions import ONNX_READ, Needs
from gcs_model_sync.plan.completeness import (
    Rules,
    Wait,
    companion_gap,
    saved_model_gap,
    shrunk,
    to_read,
    unread,
    waiting,
)
from gcs_model_sync.plan.plan import PlanOptions, make_plan

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
        # Triton's tensorflow_savedmodel layout: the SavedModel is V/model.savedmodel/
        (tuple(f"model.savedmodel/{p}" for p in SAVED_MODEL), None),
        (
            tuple(f"model.savedmodel/{p}" for p in SAVED_MODEL[:3]),
            "SavedModel missing model.savedmodel/variables/variables.data-00001-of-00002",
        ),
        (
            (
                "model.savedmodel/saved_model.pb",
                "model.savedmodel/variables/variables.data-00000-of-00001",
            ),
            "SavedModel without model.savedmodel/variables/variables.index yet",
        ),
        (
            tuple(f"model.savedmodel/{p}" for p in SAVED_MODEL[1:]),
            "has model.savedmodel/variables/ but no model.savedmodel/saved_model.pb yet",
        ),
        # each root on its own: a whole one does not hide another one's gap
        (
            (*SAVED_MODEL, "b/saved_model.pb", "b/variables/variables.data-00000-of-00001"),
            "SavedModel without b/variables/variables.index yet",
        ),
        (("assets/variables/words.txt", "model.onnx"), None),  # deeper, only checkpoint names count
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


def reads(*files: str | tuple[str, int]) -> list[str]:
    """The relpaths to_read() names for a version listing these files (name or (name, size))."""
    out = []
    for f in files:
        rel, size = (f, 10) if isinstance(f, str) else f
        out.append(Entry(RemoteObject(f"m/3/{rel}", 1, size), "m", "3", Form.FOLDER, rel))
    return [e.relpath for e in to_read(out)]


def test_model_files_are_read_only_where_the_listing_cannot_tell() -> None:
    assert reads(*SAVED_MODEL) == []  # the listing rules judge a graph with its variables
    assert reads("saved_model.pb", "assets/a.txt") == ["saved_model.pb"]
    assert reads("saved_model.pb", "saved_model.pbtxt") == ["saved_model.pb"]  # TF loads .pb
    assert reads("saved_model.pbtxt") == ["saved_model.pbtxt"]
    assert reads("model.savedmodel/saved_model.pb", "config.pbtxt") == [
        "model.savedmodel/saved_model.pb"
    ]
    assert reads("model.xml", "model.bin", "labels.xml") == ["labels.xml"]
    assert reads("model.onnx", "w.bin") == ["model.onnx"]
    assert reads(("big.onnx", ONNX_READ + 1)) == []  # weights inline: no external data
    assert reads("model.bin", "config.pbtxt", "model.pt") == []


ANY = Rules()
VARS = Needs(variables=True)


def facts_for(files: list[Entry], **needs: Needs) -> dict[tuple[str, int], Needs]:
    return {(e.obj.name, e.obj.generation): needs.get(e.relpath, Needs()) for e in to_read(files)}


def test_a_graph_that_references_variables_waits_for_them() -> None:
    graph = entries("saved_model.pb", "assets/vocab.txt")
    needs_them = facts_for(graph, **{"saved_model.pb": Needs(variables=True)})
    assert waiting(graph, ANY, needs_them) == (
        Wait.INCOMPLETE,
        "saved_model.pb references variables but no variables/ uploaded yet",
    )
    assert waiting(graph, ANY, facts_for(graph)) is None  # a frozen graph
    assert waiting(entries(*SAVED_MODEL), ANY, {}) is None  # nothing to read
    nested = entries("m.savedmodel/saved_model.pb")
    assert companion_gap(nested, facts_for(nested, **{"m.savedmodel/saved_model.pb": VARS})) == (
        "m.savedmodel/saved_model.pb references variables but no m.savedmodel/variables/ "
        "uploaded yet"
    )


def test_onnx_external_data_and_openvino_weights_must_be_listed_beside_them() -> None:
    onnx = entries("sub/model.onnx", "sub/w1.bin")
    facts = facts_for(onnx, **{"sub/model.onnx": Needs(files=("w1.bin", "data/w2.bin"))})
    assert (
        companion_gap(onnx, facts) == "sub/model.onnx refers to sub/data/w2.bin, not uploaded yet"
    )
    assert companion_gap(entries("sub/model.onnx", "sub/w1.bin", "sub/data/w2.bin"), facts) is None
    ir = entries("model.xml", "labels.xml")
    facts = facts_for(ir, **{"model.xml": Needs(files=("model.bin",))})
    assert waiting(ir, ANY, facts) == (
        Wait.INCOMPLETE,
        "model.xml refers to model.bin, not uploaded yet",
    )


def test_unread_files_are_read_only_once_the_listing_would_publish() -> None:
    graph = entries(("saved_model.pb", 0))
    settling = Rules(now=T0_S + 1, settle=60)
    assert waiting(graph, settling, {})[0] is Wait.SETTLING  # type: ignore[index]
    assert waiting(graph, ANY, {}) == (Wait.UNREAD, "some of its model files are read first")
    assert [e.relpath for e in unread(graph, {})] == ["saved_model.pb"]
    assert unread(graph, facts_for(graph)) == []
    assert waiting(graph, ANY) is None  # no facts at all: the listing alone judges


def test_keep_reaches_an_older_version_once_the_newest_is_read_incomplete() -> None:
    """--keep 1: version 10's graph needs variables not uploaded yet, so 9 (a frozen graph)
    is what to serve meanwhile; each is read before it is judged."""
    objects = [RemoteObject(f"p/m/{v}/saved_model.pb", 1, 10) for v in (9, 10)]
    groups, local = group(objects, "p/"), LocalView({}, frozenset())

    def plan(facts: dict[tuple[str, int], Needs]) -> tuple[list[str], list[str]]:
        p = make_plan(groups, local, PlanOptions(keep=1), facts=facts)
        waits = [f"{w.id}:{w.kind}" for w in p.waiting]
        return waits, [i.version.id for i in p.installs]

    assert plan({}) == (["m/10:unread"], [])
    facts = {("p/m/10/saved_model.pb", 1): VARS}
    assert plan(facts) == (["m/9:unread", "m/10:incomplete"], [])
    facts[("p/m/9/saved_model.pb", 1)] = Needs()
    assert plan(facts) == (["m/10:incomplete"], ["m/9"])
