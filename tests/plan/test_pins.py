"""Pins and aliases: what they hold in place, the errors they make, and what TF Serving is
told to serve; pure, a table of (listing, local view, pins, aliases) -> plan."""

from __future__ import annotations

import pytest

from gcs_model_sync.layout import group
from gcs_model_sync.local.state import Managed
from gcs_model_sync.plan import pins
from gcs_model_sync.plan.deletions import decide
from gcs_model_sync.plan.pins import Aliases, Hold, Serving, parse_aliases, serving
from gcs_model_sync.plan.plan import Plan, PlanOptions, make_plan
from gcs_model_sync.report import known_failures
from tests.support.plans import P, fp, obj, view

WHERE = "gs://b/p/m/aliases.json"


def plan(
    listed: list[int],
    installed: list[int],
    keep: int = 0,
    pin: int | None = None,
    labels: dict[str, int] | None = None,
) -> Plan:
    """Model m: versions `listed` as zips, `installed` ours on disk (as the listing has them)."""
    objects = [obj(f"m/{n}.zip") for n in listed]
    managed = [Managed("m", str(n), fp(obj(f"m/{n}.zip"))) for n in installed]
    local = view(managed, {f"m/{n}" for n in installed})
    named = {"m": Aliases("m", WHERE, 5, labels)} if labels is not None else {}
    options = PlanOptions(keep=keep, pins={"m": pin} if pin is not None else {})
    return make_plan(group(objects, P), local, options, aliases=named)


def fetched(p: Plan) -> list[str]:
    return [i.version.id for i in p.installs]


def pruned(p: Plan) -> dict[str, str]:
    return {pr.managed.id: pr.reason for pr in p.prunes}


def test_a_pin_below_keep_fetches_it_and_prunes_the_newer_versions() -> None:
    p = plan([1, 2, 3], [2, 3], keep=2, pin=1)
    assert fetched(p) == ["m/1"]
    assert pruned(p) == {"m/2": "newer than --pin m=1", "m/3": "newer than --pin m=1"}
    assert p.holds["m"].pin == 1


@pytest.mark.parametrize(
    ("keep", "pin", "wanted"),
    [(0, 2, ["m/1", "m/2"]), (1, 2, ["m/2"]), (2, 3, ["m/2", "m/3"]), (2, 4, ["m/3", "m/4"])],
)
def test_keep_counts_down_from_the_pin(keep: int, pin: int, wanted: list[str]) -> None:
    p = plan([1, 2, 3, 4], [], keep=keep, pin=pin)
    assert fetched(p) == wanted
    assert [v for v in p.outside_keep] == [f"m/{n}" for n in (1, 2, 3, 4) if f"m/{n}" not in wanted]


def test_a_pinned_or_aliased_version_the_bucket_dropped_is_kept_not_pruned() -> None:
    pinned = plan([1, 3], [1, 2, 3], pin=2)
    assert pinned.kept == ("m/2",)
    assert pruned(pinned) == {"m/3": "newer than --pin m=2"}
    aliased = plan([1, 3], [1, 2, 3], keep=1, labels={"stable": 2})
    assert aliased.kept == ("m/2",)
    assert pruned(aliased) == {"m/1": "outside --keep 1"}


def test_aliases_keep_their_versions_beside_the_newest() -> None:
    p = plan([1, 2, 3, 4], [4], keep=1, labels={"stable": 2, "old": 1})
    assert fetched(p) == ["m/1", "m/2"]
    assert p.outside_keep == ("m/3",)


@pytest.mark.parametrize(
    ("pin", "labels", "says"),
    [
        (9, None, "--pin m=9: m has no version 9 in the bucket or in DEST; nothing of m changes"),
        (None, {"stable": 7}, f"{WHERE}: stable names version 7, which m has neither"),
    ],
)
def test_a_pin_or_alias_to_a_missing_version_holds_its_model(
    pin: int | None, labels: dict[str, int] | None, says: str
) -> None:
    p = plan([1, 2, 3, 4], [1, 2], keep=1, pin=pin, labels=labels)
    (problem,) = p.problems
    assert problem.message.startswith(says)
    assert fetched(p) == []  # m/4 waits with the rest of m
    assert [i.version.id for i in p.held] == ["m/4"]
    decision = decide(p, known_failures(p))
    assert decision.prune == ()
    assert {pr.managed.id for pr in decision.held} == {"m/1", "m/2"}


def test_a_pin_the_server_is_told_of_prunes_newer_versions_once_it_serves_the_pin() -> None:
    p = plan([1, 2], [1, 2], pin=1)
    (newer,) = p.prunes
    assert decide(p, [], {"m": 2}, told=True).gated == (newer,)
    assert decide(p, [], {"m": 2}, told=True).why[newer] == (
        "the server serves version 2, not the pinned 1"
    )
    assert decide(p, [], {"m": 1}, told=True).prune == (newer,)
    # untold, a "latest" server serves the pin only once the newer version is gone
    assert decide(p, [], {"m": 2}, told=False).prune == (newer,)


@pytest.mark.parametrize(
    ("data", "labels", "problem"),
    [
        (b'{"stable": 7, "canary": "09"}', {"stable": 7, "canary": 9}, None),
        (b"{}", {}, None),
        (b"[7]", {}, "not a JSON object"),
        (b"{nope", {}, "not a JSON object"),
        (b"\xff", {}, "not a JSON object"),
        (b'{"stable": true}', {}, "True is not a version number"),
        (b'{"stable": -1}', {}, "-1 is not a version number"),
        (b'{"stable": 1.5}', {}, "1.5 is not a version number"),
        (b'{"stable": "v7"}', {}, "'v7' is not a version number"),
        (b'{"a b": 7}', {}, "label 'a b'"),
        (b'{"": 7}', {}, "label ''"),
        (b'{"stable": 1}' + b" " * pins.ALIASES_MAX, {}, "larger than"),
    ],
)
def test_an_aliases_object_is_a_json_object_of_labels_and_version_numbers(
    data: bytes, labels: dict[str, int], problem: str | None
) -> None:
    got = parse_aliases("m", WHERE, 5, data)
    assert dict(got.labels) == labels
    if problem is None:
        assert got.problem is None
    else:
        assert got.problem is not None
        assert got.problem.startswith(f"{WHERE}: ")
        assert problem in got.problem


@pytest.mark.parametrize(
    ("hold", "on_disk", "before", "expected"),
    [
        (None, {1, 2}, {1, 2}, None),
        (Hold("m", pin=1), {1, 2}, {1, 2}, Serving((1,))),
        (Hold("m", pin=3), {1, 2}, {1, 2}, None),  # the pin is not on disk: never a gap
        (Hold("m", labels={"stable": 1}), {1, 2, 3}, {1, 3}, Serving((1, 3), {"stable": 1})),
        # a label follows its version one pass later (TF Serving has loaded it by then)
        (Hold("m", labels={"stable": 1, "canary": 3}), {1, 3}, {1}, Serving((1, 3), {"stable": 1})),
        (Hold("m", pin=2, labels={"stable": 2, "b": 1}), {1, 2}, {1, 2},
         Serving((2,), {"stable": 2})),
    ],
)  # fmt: skip
def test_serving_names_the_pin_or_the_newest_with_the_aliased_versions(
    hold: Hold | None, on_disk: set[int], before: set[int], expected: Serving | None
) -> None:
    assert serving(hold, on_disk, before) == expected
