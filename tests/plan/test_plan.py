"""The planner is pure: a table of (listing, local view, options) -> plan (its properties:
plan/test_plan_properties.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gcs_model_sync.layout import Form, RemoteObject
from gcs_model_sync.local.state import PENDING, Managed
from gcs_model_sync.plan.completeness import Rules
from gcs_model_sync.plan.plan import Plan
from tests.support.plans import P, fp, has_changes, installs, obj, plan_of, prunes, view


def test_new_versions_are_fetched() -> None:
    objects = [
        obj("m/1.zip"),
        obj("m/2/saved_model.pb"),
        obj("m/2/assets/vocab.txt"),
        obj("3.tgz"),
    ]
    plan = plan_of(objects, view())
    assert installs(plan) == {"m/1": "new", "m/2": "new", "3": "new"}
    assert not any(i.replaces for i in plan.installs)
    assert plan.prunes == plan.rejections == plan.unmanaged == plan.forget == ()
    assert plan.guard is None
    assert has_changes(plan)
    assert plan.remote_models == frozenset({"m", ""})
    folder = next(i.version for i in plan.installs if i.version.id == "m/2")
    assert folder.form is Form.FOLDER
    assert [e.relpath for e in folder.entries] == ["saved_model.pb", "assets/vocab.txt"]
    assert folder.size == 20
    assert folder.objects == (objects[1], objects[2])


def test_in_sync_does_nothing() -> None:
    o = obj("m/1.zip", generation=7)
    plan = plan_of([o], view([Managed("m", "1", fp(o))], {"m/1"}))
    assert plan.in_sync == ("m/1",)
    assert plan.installs == plan.prunes == ()
    assert not has_changes(plan)


def test_changed_generation_is_replaced() -> None:
    old, new = obj("m/1.zip", generation=7), obj("m/1.zip", generation=8)
    plan = plan_of([new], view([Managed("m", "1", fp(old))], {"m/1"}))
    assert installs(plan) == {"m/1": "changed"}
    assert plan.installs[0].replaces
    assert plan.installs[0].version.fingerprint == fp(new)


def test_changed_folder_object_is_replaced() -> None:
    a, b = obj("m/1/a", 1), obj("m/1/b", 1)
    b2 = obj("m/1/b", 2)
    plan = plan_of([a, b2], view([Managed("m", "1", fp(a, b))], {"m/1"}))
    assert installs(plan) == {"m/1": "changed"}
    # an object added to the folder changes it too
    plan = plan_of([a, b, obj("m/1/c")], view([Managed("m", "1", fp(a, b))], {"m/1"}))
    assert installs(plan) == {"m/1": "changed"}


def test_pending_fingerprint_is_reinstalled() -> None:
    """A crash between writing "pending" and publishing leaves a version that must be redone."""
    o = obj("m/1.zip")
    plan = plan_of([o], view([Managed("m", "1", PENDING)], {"m/1"}))
    assert installs(plan) == {"m/1": "changed"}
    assert plan.in_sync == ()


def test_removed_managed_version_is_pruned() -> None:
    o = obj("m/2.zip")
    managed = [Managed("m", "1", "zip:1"), Managed("m", "2", fp(o))]
    plan = plan_of([o], view(managed, {"m/1", "m/2"}))
    assert prunes(plan) == {"m/1": "removed from the bucket"}
    assert plan.guard is None
    assert has_changes(plan)


def test_unmanaged_folder_not_in_bucket_is_left_alone() -> None:
    o = obj("m/2.zip")
    plan = plan_of([o], view([Managed("m", "2", fp(o))], {"m/1", "m/2", "other/5"}))
    assert plan.prunes == ()
    assert plan.unmanaged == ("m/1", "other/5")
    assert not has_changes(plan)


def test_unmanaged_folder_in_bucket_is_replaced() -> None:
    plan = plan_of([obj("m/1.zip")], view([], {"m/1"}))
    assert installs(plan) == {"m/1": "replaces unmanaged"}
    assert plan.installs[0].replaces
    assert plan.unmanaged == ()


def test_managed_but_missing_is_reinstalled() -> None:
    o = obj("m/1.zip")
    plan = plan_of([o], view([Managed("m", "1", fp(o))], set()))
    assert installs(plan) == {"m/1": "missing locally"}
    assert not plan.installs[0].replaces
    assert plan.forget == ()


def test_managed_missing_and_gone_from_bucket_is_forgotten() -> None:
    plan = plan_of([obj("m/2.zip")], view([Managed("m", "1", "zip:1")], set()))
    assert plan.forget == ("m/1",)
    assert plan.prunes == ()
    assert installs(plan) == {"m/2": "new"}


@pytest.mark.parametrize("spread", ["one model", "two models"])
def test_keep_fetches_only_the_newest(spread: str) -> None:
    models = ["m"] if spread == "one model" else ["a", "b/c"]
    objects = [obj(f"{m}/{n}.zip") for m in models for n in (1, 2, 10, 3)]
    plan = plan_of(objects, view(), keep=2)
    assert installs(plan) == {f"{m}/{n}": "new" for m in models for n in (3, 10)}
    assert plan.outside_keep == tuple(f"{m}/{n}" for m in models for n in (1, 2))


def test_keep_prunes_older_managed_and_leaves_older_unmanaged() -> None:
    objects = [obj(f"m/{n}.zip") for n in (1, 2, 3, 4)]
    managed = [Managed("m", "2", fp(objects[1])), Managed("m", "4", fp(objects[3]))]
    plan = plan_of(objects, view(managed, {"m/1", "m/2", "m/4"}), keep=2)
    assert prunes(plan) == {"m/2": "outside --keep 2"}
    assert installs(plan) == {"m/3": "new"}
    assert plan.in_sync == ("m/4",)
    assert plan.unmanaged == ("m/1",)
    assert plan.outside_keep == ("m/1", "m/2")


def test_keep_forgets_missing_managed_outside_keep() -> None:
    objects = [obj(f"m/{n}.zip") for n in (1, 2)]
    plan = plan_of(objects, view([Managed("m", "1", fp(objects[0]))], set()), keep=1)
    assert plan.forget == ("m/1",)
    assert installs(plan) == {"m/2": "new"}


def test_empty_source_guards_managed_versions() -> None:
    local = view([Managed("m", "1", "zip:1"), Managed("m", "2", "zip:1")], {"m/1", "m/2"})
    for objects in ([], [obj("README.md"), obj("m/")]):
        plan = plan_of(objects, local)
        assert prunes(plan) == {"m/1": "removed from the bucket", "m/2": "removed from the bucket"}
        assert plan.guard is not None
        assert "--allow-empty-source" in plan.guard
        assert not has_changes(plan)
    plan = plan_of([], local, allow_empty_source=True)
    assert plan.guard is None
    assert set(prunes(plan)) == {"m/1", "m/2"}
    assert has_changes(plan)


def test_empty_source_without_managed_versions_needs_no_guard() -> None:
    plan = plan_of([], view([], {"m/1"}))
    assert plan.guard is None
    assert plan.unmanaged == ("m/1",)
    plan = plan_of([], view([Managed("m", "1", "x")], set()))
    assert plan.guard is None
    assert plan.forget == ("m/1",)


def test_empty_listing_with_nothing_installed_is_nothing_to_serve() -> None:
    source = "gs://b/modles/"
    for objects in ([], [obj("README.md"), obj("m/"), obj("m/latest.txt")]):
        # a fresh node, or one whose state names versions whose folders are gone
        for local in (view(), view([Managed("m", "1", "x")], set())):
            plan = plan_of(objects, local, source=source)
            assert plan.empty == (
                "gs://b/modles/ holds no model versions and nothing is installed: nothing to "
                "serve (a typo in --source? pass --allow-empty-source if this is intended)"
            )
            assert plan.guard is None
            assert not has_changes(plan)
            accepted = plan_of(objects, local, source=source, allow_empty_source=True)
            assert accepted.empty is None


def test_a_listing_is_not_empty_when_versions_wait_fail_or_are_installed() -> None:
    uploading = Rules(now=datetime(2024, 1, 1, tzinfo=UTC).timestamp(), settle=60)
    fresh = RemoteObject(P + "m/1/saved_model.pb", 1, 10, updated="2024-01-01T00:00:00Z")
    assert plan_of([fresh], view(), rules=uploading).waiting
    assert plan_of([fresh], view(), rules=uploading).empty is None
    ambiguous = [obj("m/2.zip"), obj("m/0002.tar.gz")]
    assert plan_of(ambiguous, view()).rejections
    assert plan_of(ambiguous, view()).empty is None
    # versions on disk: the deletion guard speaks instead; a hand-made one is served
    managed = view([Managed("m", "1", "zip:1")], {"m/1"})
    assert plan_of([], managed).guard is not None
    assert plan_of([], managed).empty is None
    assert plan_of([], view([Managed("m", "1", "x")], {"m/9"})).empty is None


@pytest.mark.parametrize(
    ("max_delete", "guarded"), [(None, False), (3, False), (2, True), (0, True)]
)
def test_max_delete(max_delete: int | None, guarded: bool) -> None:
    managed = [Managed("m", str(n), "zip:1") for n in (1, 2, 3)]
    plan = plan_of([obj("m/9.zip")], view(managed, {"m/1", "m/2", "m/3"}), max_delete=max_delete)
    assert len(plan.prunes) == 3
    assert (plan.guard is not None) == guarded
    if guarded:
        assert f"--max-delete {max_delete}" in str(plan.guard)
    assert installs(plan) == {"m/9": "new"}
    assert has_changes(plan)  # the install still happens


# -- uploads in progress --------------------------------------------------------------
NOW = 1796126400.0  # the bucket's clock in these plans
SETTLE = Rules(now=NOW, settle=60)


def aged(key: str, age: float, generation: int = 1) -> RemoteObject:
    """An object finalized `age` seconds before NOW on the bucket's clock."""
    stamp = datetime.fromtimestamp(NOW - age, UTC).isoformat(timespec="milliseconds")
    return RemoteObject(P + key, generation, 10, updated=stamp)


def waits(plan: Plan) -> dict[str, tuple[str, bool]]:
    return {w.id: (str(w.kind), w.installed) for w in plan.waiting}


def test_a_folder_version_still_uploading_waits_and_an_archive_never_does() -> None:
    objects = [aged("m/3/saved_model.pb", 5), aged("m/4.zip", 0), aged("m/2/a.bin", 600)]
    plan = plan_of(objects, view(), rules=SETTLE)
    assert installs(plan) == {"m/2": "new", "m/4": "new"}
    assert waits(plan) == {"m/3": ("settling", False)}
    assert not plan.prunes


def test_a_reupload_in_progress_keeps_the_installed_version() -> None:
    old = [aged("m/3/saved_model.pb", 900), aged("m/3/assets/a", 900)]
    new = [aged("m/3/saved_model.pb", 3, generation=2), old[1]]
    installed = Managed("m", "3", fp(*old), objects={"saved_model.pb": 1, "assets/a": 1})
    plan = plan_of(new, view([installed], {"m/3"}), rules=SETTLE)
    assert waits(plan) == {"m/3": ("settling", True)}
    assert installs(plan) == {}
    assert not plan.prunes
    assert plan.in_sync == ()
    settled = plan_of(new, view([installed], {"m/3"}), rules=SETTLE._replace(now=NOW + 60))
    assert installs(settled) == {"m/3": "changed"}


def test_a_delete_in_progress_keeps_the_installed_version_until_it_is_gone() -> None:
    full = [aged("m/3/saved_model.pb", 900), aged("m/3/assets/a", 900), aged("m/4.zip", 900)]
    installed = [
        Managed("m", "3", fp(*full[:2]), objects={"saved_model.pb": 1, "assets/a": 1}),
        Managed("m", "4", fp(full[2])),
    ]
    local = view(installed, {"m/3", "m/4"})
    partly = plan_of([full[0], full[2]], local, rules=Rules())  # even with no --settle
    assert waits(partly) == {"m/3": ("shrunk", True)}
    assert installs(partly) == {}
    assert not partly.prunes
    gone = plan_of([full[2]], local, rules=Rules())
    assert prunes(gone) == {"m/3": "removed from the bucket"}


def test_a_version_still_uploading_does_not_push_a_served_one_out_of_keep() -> None:
    objects = [aged("m/1/a", 900), aged("m/2/a", 900), aged("m/3/a", 1)]
    managed = [Managed("m", n, fp(o)) for n, o in (("1", objects[0]), ("2", objects[1]))]
    plan = plan_of(objects, view(managed, {"m/1", "m/2"}), keep=2, rules=SETTLE)
    assert waits(plan) == {"m/3": ("settling", False)}
    assert not plan.prunes
    assert set(plan.in_sync) == {"m/1", "m/2"}
    later = plan_of(
        objects, view(managed, {"m/1", "m/2"}), keep=2, rules=SETTLE._replace(now=NOW + 60)
    )
    assert installs(later) == {"m/3": "new"}
    assert prunes(later) == {"m/1": "outside --keep 2"}


def test_a_version_still_uploading_outside_keep_is_only_outside_keep() -> None:
    objects = [aged("m/1/a", 1), aged("m/2.zip", 900), aged("m/3.zip", 900)]
    plan = plan_of(objects, view(), keep=2, rules=SETTLE)
    assert plan.waiting == ()
    assert plan.outside_keep == ("m/1",)
