"""The planner is pure: a table of (listing, local view, options) -> plan, and its properties."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcs_model_sync import deletions
from gcs_model_sync.completeness import Rules
from gcs_model_sync.layout import Form, RemoteObject, group
from gcs_model_sync.plan import Plan, make_plan
from gcs_model_sync.report import rejected
from gcs_model_sync.scan import LocalView
from gcs_model_sync.state import PENDING, Managed, ManagedFile, Refusal
from gcs_model_sync.versions import versions_of
from tests.support.plans import (
    P,
    files_plan,
    fp,
    has_changes,
    installs,
    obj,
    plan_of,
    prunes,
    view,
)


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


def test_keep_compares_numbers_not_spellings() -> None:
    objects = [obj("m/9.zip"), obj("m/0010.zip"), obj("m/0008.zip")]
    plan = plan_of(objects, view(), keep=1)
    assert installs(plan) == {"m/0010": "new"}


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        (["m/2.zip", "m/0002.tar.gz"], ["p/m/2.zip", "p/m/0002.tar.gz"]),
        (["m/3.zip", "m/3/saved_model.pb", "m/3/v/x"], ["p/m/3.zip", "folder p/m/3/"]),
        (["m/3.zip", "m/3.tar"], ["p/m/3.zip", "p/m/3.tar"]),
        (["m/4/a", "m/04/a"], ["folder p/m/4/", "folder p/m/04/"]),
        (["m/3.zip", "m/3/sub3/x"], ["p/m/3.zip", "folder p/m/3/ "]),
    ],
)
def test_ambiguous_versions_are_rejected_naming_both(keys: list[str], named: list[str]) -> None:
    objects = [obj(k) for k in keys] + [obj("m/9.zip")]
    plan = plan_of(objects, view())
    assert installs(plan) == {"m/9": "new"}
    assert len(plan.rejections) == 1
    message = plan.rejections[0].message + " "
    assert "ambiguous" in message
    for name in named:
        assert name in message
    assert "\n" not in message


def test_ambiguous_version_is_not_pruned_under_any_spelling() -> None:
    """A managed `2` stays while `2.zip` and `0002.tar.gz` both claim version 2."""
    zip2, tgz2 = obj("m/2.zip"), obj("m/0002.tar.gz")
    managed = [Managed("m", "2", fp(zip2)), Managed("m", "0002", "tar.gz:9")]
    for keep in (0, 1, 2):
        plan = plan_of([zip2, tgz2], view(managed, {"m/2", "m/0002"}), keep=keep)
        assert plan.prunes == (), keep
        assert plan.installs == (), keep
        assert plan.forget == (), keep
        assert len(plan.rejections) == 1


def test_ambiguous_version_counts_for_keep() -> None:
    objects = [obj("m/1.zip"), obj("m/2.zip"), obj("m/3.zip"), obj("m/3/x")]
    managed = [Managed("m", "2", fp(objects[1]))]
    plan = plan_of(objects, view(managed, {"m/2"}), keep=2)
    assert installs(plan) == {}
    assert plan.in_sync == ("m/2",)
    assert plan.outside_keep == ("m/1",)
    assert [r.id for r in plan.rejections] == ["m/3"]


TOO_BIG = "99999999999999999999"  # beyond int64, which is how TF Serving reads a version


def test_a_version_number_beyond_int64_is_rejected_and_never_ranked() -> None:
    """With --keep 1, `5.zip` is kept; the big ones are one line each and count for nothing."""
    objects = [obj("m/5.zip"), obj(f"m/{TOO_BIG}.zip"), obj(f"m/{TOO_BIG}/a"), obj("m/4.zip")]
    managed = [Managed("m", "4", fp(objects[3]))]
    plan = plan_of(objects, view(managed, {"m/4"}), keep=1)
    assert installs(plan) == {"m/5": "new"}
    assert plan.outside_keep == ("m/4",)
    assert prunes(plan) == {"m/4": "outside --keep 1"}
    messages = sorted(r.message for r in plan.rejections)
    assert [r.id for r in plan.rejections] == [f"m/{TOO_BIG}"] * 2
    assert f"folder p/m/{TOO_BIG}/" in messages[0]
    assert f"p/m/{TOO_BIG}.zip" in messages[1]
    assert all("int64" in m and "\n" not in m for m in messages)


def test_the_largest_int64_is_a_version() -> None:
    biggest = str(2**63 - 1)
    plan = plan_of([obj(f"m/{biggest}.zip"), obj(f"m/0{int(biggest) + 1}/a")], view(), keep=1)
    assert installs(plan) == {f"m/{biggest}": "new"}
    assert [r.id for r in plan.rejections] == [f"m/0{int(biggest) + 1}"]


def test_a_listing_of_only_numbers_beyond_int64_is_a_rejection_not_an_empty_source() -> None:
    plan = plan_of([obj(f"m/{TOO_BIG}.zip")], view())
    assert plan.empty is None
    assert len(plan.rejections) == 1


def test_a_local_folder_and_a_bucket_version_of_one_number_reject_that_model_only() -> None:
    """DEST/m/0003 beside 3.zip: a model server reads both as 3 and may keep either. One line
    naming both; nothing of m is installed (4 neither) or pruned; n goes on."""
    objects = [obj("m/3.zip"), obj("m/4.zip"), obj("n/1.zip")]
    plan = plan_of(objects, view(on_disk={"m/0003"}))
    assert installs(plan) == {"n/1": "new"}
    assert [(i.version.id, i.reason) for i in plan.held] == [("m/4", "new")]
    [r] = plan.rejections
    assert (r.model, r.id, r.listed) == ("m", "m/3", True)
    assert "m/0003" in r.message
    assert "p/m/3.zip" in r.message
    assert "\n" not in r.message
    assert plan.unmanaged == ()  # named by the error already


def test_an_installed_version_reuploaded_under_another_spelling_is_a_clash_and_stays() -> None:
    """We installed 0003 from 0003.zip; the bucket now holds 3.zip instead. Neither is pruned
    nor installed until one spelling is left."""
    old, new, two = obj("m/0003.zip"), obj("m/3.zip"), obj("m/2.zip")
    managed = [Managed("m", "0003", fp(old)), Managed("m", "2", fp(two))]
    plan = plan_of([new, two], view(managed, {"m/0003", "m/2"}))
    assert installs(plan) == {}
    assert [r.id for r in plan.rejections] == ["m/3"]
    decision = deletions.decide(plan, [rejected(r) for r in plan.rejections])
    assert decision.prune == ()
    assert [p.managed.id for p in decision.held] == ["m/0003"]
    assert deletions.free_first(plan, view(managed, {"m/0003", "m/2"})) == ()


def test_two_local_folders_of_one_number_reject_their_model() -> None:
    ours = obj("m/3.zip")
    plan = plan_of([ours, obj("m/4.zip")], view([Managed("m", "3", fp(ours))], {"m/3", "m/03"}))
    assert installs(plan) == {}
    [r] = plan.rejections
    assert r.id == "m/3"
    assert "m/03" in r.message
    assert "m/3 " in r.message + " "


def test_two_hand_made_folders_of_a_number_the_bucket_lacks_reject_their_model() -> None:
    plan = plan_of([obj("m/5.zip"), obj("n/1.zip")], view(on_disk={"m/3", "m/003"}))
    assert installs(plan) == {"n/1": "new"}
    [r] = plan.rejections
    assert (r.id, r.listed) == ("m/3", False)  # not in the bucket: status lists it locally
    assert plan.unmanaged == ()


def test_one_spelling_on_each_side_is_no_clash() -> None:
    """The same spelling locally and in the bucket, or other numbers: the ordinary plan."""
    objects = [obj("m/0003.zip"), obj("m/4.zip")]
    plan = plan_of(objects, view(on_disk={"m/0003", "m/5", "m/06"}))
    assert plan.rejections == ()
    assert installs(plan) == {"m/0003": "replaces unmanaged", "m/4": "new"}


def test_a_bucket_spelling_outside_keep_is_no_clash() -> None:
    """Outside --keep, 1.zip never lands beside the hand-made DEST/m/01: nothing clashes."""
    objects = [obj("m/1.zip"), obj("m/2.zip")]
    plan = plan_of(objects, view(on_disk={"m/01"}), keep=1)
    assert plan.rejections == ()
    assert installs(plan) == {"m/2": "new"}
    assert plan.unmanaged == ("m/01",)


def test_unsafe_key_rejects_its_version_only() -> None:
    objects = [obj("m/1/ok"), obj("m/1/../../evil"), obj("m/2.zip")]
    managed = [Managed("m", "1", "old")]
    plan = plan_of(objects, view(managed, {"m/1"}))
    assert installs(plan) == {"m/2": "new"}
    assert [r.id for r in plan.rejections] == ["m/1"]
    assert "p/m/1/../../evil" in plan.rejections[0].message
    assert plan.prunes == ()  # still in the bucket, just unusable


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


def test_versions_of_a_grouped_listing() -> None:
    objects = [obj("m/1/a"), obj("m/1/b"), obj("m/2.zip"), obj("n/2.zip")]
    versions, rejections = versions_of(group(objects, P))
    assert rejections == []
    assert sorted((v.id, v.form, len(v.entries)) for v in versions) == [
        ("m/1", Form.FOLDER, 2),
        ("m/2", Form.ZIP, 1),
        ("n/2", Form.ZIP, 1),
    ]


# --- properties: applying a plan makes the local side mirror the bucket ------------------------

MODELS = ["", "a", "b/c"]


def _number(vid: str) -> tuple[str, int]:
    model, _, version = vid.rpartition("/")
    return model, int(version)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[RemoteObject], LocalView]:
    objects: list[RemoteObject] = []
    remote_ids = []
    for model in MODELS:
        for number in draw(st.sets(st.integers(0, 12), max_size=5)):
            version = draw(st.sampled_from([str(number), f"{number:04d}"]))
            base = f"{model}/{version}" if model else version
            remote_ids.append(base)
            form = draw(st.sampled_from(["zip", "tar", "tar.gz", "tgz", "folder"]))
            gen = draw(st.integers(1, 3))
            if form == "folder":
                files = draw(st.sets(st.sampled_from(["a", "b/c", "d/e/f"]), min_size=1))
                objects += [obj(f"{base}/{f}", gen) for f in sorted(files)]
            else:
                objects.append(obj(f"{base}.{form}", gen))
    noise = draw(st.lists(st.sampled_from(["README.md", "a/latest", "b/c/", "x/y.txt"])))
    objects += [obj(k) for k in noise]
    candidates = [*remote_ids, "a/99", "b/c/77", "5", "a/0005"]
    managed_ids = draw(st.sets(st.sampled_from(candidates)))
    on_disk = draw(st.sets(st.sampled_from(candidates)))
    # One spelling of a number on disk: another beside it (a/0005, bucket a/5) is a clash,
    # which rejects its model (test_..._of_one_number_reject_that_model_only).
    spelled = {_number(vid): vid for vid in remote_ids}
    on_disk = {vid for vid in on_disk if spelled.get(_number(vid), vid) == vid}
    remote_fps = {v.id: v.fingerprint for v in versions_of(group(objects, P))[0]}
    managed = []
    for vid in managed_ids:
        model, _, version = vid.rpartition("/")
        choice = draw(st.sampled_from(["same", "stale", PENDING]))
        fingerprint_ = remote_fps.get(vid, "stale") if choice == "same" else choice
        managed.append(Managed(model, version, fingerprint_))
    return objects, view(managed, on_disk)


def apply(plan: Plan, local: LocalView) -> LocalView:
    """What the engine does with a plan when every step succeeds."""
    managed = dict(local.managed)
    on_disk = set(local.on_disk)
    for i in plan.installs:
        v = i.version
        managed[v.id] = Managed(v.model, v.version, v.fingerprint)
        on_disk.add(v.id)
    for vid in plan.forget:
        del managed[vid]
    if not plan.guard:
        for p in plan.prunes:
            del managed[p.managed.id]
            on_disk.remove(p.managed.id)
    return LocalView(managed, frozenset(on_disk))


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_applying_the_plan_mirrors_the_bucket_and_is_idempotent(
    scenario: tuple[list[RemoteObject], LocalView],
) -> None:
    objects, local = scenario
    plan = plan_of(objects, local, allow_empty_source=True)
    assert plan.guard is None
    assert plan.rejections == ()
    after = apply(plan, local)

    remote = {v.id: v.fingerprint for v in versions_of(group(objects, P))[0]}
    # every bucket version is on disk, owned, and from the listed generation
    assert {vid: m.fingerprint for vid, m in after.managed.items()} == remote
    assert set(remote) <= after.on_disk
    # nothing we own is left that the bucket lacks; folders we never owned are untouched
    unmanaged_before = local.on_disk - set(local.managed)
    assert after.on_disk - set(remote) == unmanaged_before - set(remote)
    assert set(plan.unmanaged) == unmanaged_before - set(remote)

    again = plan_of(objects, after, allow_empty_source=True)
    assert again.installs == again.prunes == again.forget == ()
    assert set(again.in_sync) == set(remote)
    assert not has_changes(again)


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.integers(1, 3))
def test_applying_a_keep_plan_holds_the_newest_n(
    scenario: tuple[list[RemoteObject], LocalView], keep: int
) -> None:
    objects, local = scenario
    plan = plan_of(objects, local, keep=keep, allow_empty_source=True)
    after = apply(plan, local)
    versions = versions_of(group(objects, P))[0]
    newest = set()
    for model in MODELS:
        ranked = sorted((v.number, v.id) for v in versions if v.model == model)
        newest |= {vid for _, vid in ranked[-keep:]}
    assert set(after.managed) == newest
    assert newest <= after.on_disk
    again = plan_of(objects, after, keep=keep, allow_empty_source=True)
    assert again.installs == again.prunes == again.forget == ()


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


# --- model files (--model-files) ------------------------------------------------------------


def changes(plan: Plan) -> dict[str, str]:
    return {f.id: ("remove: " if f.removes else "write: ") + f.reason for f in plan.files}


def test_model_files_are_the_objects_directly_inside_a_folder_with_versions() -> None:
    objects = [
        obj("resnet/1.zip"),
        obj("resnet/config.pbtxt"),
        obj("resnet/labels.txt"),
        obj("resnet/extra/notes.txt"),  # deeper: not a model file
        obj("resnet/0002"),  # a number: where a version folder goes
        obj("README.md"),  # the prefix root
        obj("docs/guide.md"),  # a folder without versions
        obj("team/bert/2/saved_model.pb"),
        obj("team/bert/config.pbtxt"),
    ]
    plan = files_plan(objects)
    assert changes(plan) == {
        "resnet/config.pbtxt": "write: new",
        "resnet/labels.txt": "write: new",
        "team/bert/config.pbtxt": "write: new",
    }


def test_model_files_are_ignored_without_the_option() -> None:
    objects = [obj("resnet/1.zip"), obj("resnet/config.pbtxt")]
    mine = ManagedFile("resnet", "old.txt", 5)
    local = LocalView({}, frozenset(), {mine.id: mine}, frozenset({mine.id}))
    plan = make_plan(group(objects, P), local)  # files=None: --model-files is off
    assert plan.files == plan.files_left == plan.files_in_sync == ()


def test_model_files_are_replaced_when_their_generation_changes_and_removed_when_gone() -> None:
    objects = [obj("m/1.zip"), obj("m/config.pbtxt", generation=7), obj("m/same.txt", 3)]
    files = [
        ManagedFile("m", "config.pbtxt", 6),
        ManagedFile("m", "same.txt", 3),
        ManagedFile("m", "gone.txt", 2),
        ManagedFile("m", "deleted-by-hand.txt", 2),
    ]
    entries = {"m/config.pbtxt", "m/same.txt", "m/gone.txt"}
    plan = files_plan(objects, files, entries)
    assert changes(plan) == {
        "m/config.pbtxt": "write: changed",
        "m/gone.txt": "remove: removed from the bucket",
    }
    assert plan.files_in_sync == ("m/same.txt",)
    assert plan.files_forget == ("m/deleted-by-hand.txt",)


def test_a_hand_made_file_in_the_way_is_left_alone_and_never_removed() -> None:
    objects = [obj("m/1.zip"), obj("m/config.pbtxt")]
    plan = files_plan(objects, entries={"m/config.pbtxt", "m/notes.txt"})
    assert plan.files == ()
    assert plan.files_left == ("m/config.pbtxt",)


def test_a_model_file_of_ours_missing_locally_is_written_again() -> None:
    objects = [obj("m/1.zip"), obj("m/config.pbtxt", 4)]
    plan = files_plan(objects, [ManagedFile("m", "config.pbtxt", 4)])
    assert changes(plan) == {"m/config.pbtxt": "write: missing locally"}


def test_a_model_that_leaves_the_bucket_takes_its_files_with_it_and_counts_for_the_guards() -> None:
    files = [ManagedFile("gone", "config.pbtxt", 1)]
    plan = files_plan([obj("m/1.zip")], files, {"gone/config.pbtxt"})
    assert changes(plan) == {"gone/config.pbtxt": "remove: its model left the bucket"}
    empty = files_plan([], files, {"gone/config.pbtxt"})
    assert empty.guard is not None
    assert "refusing to delete" in empty.guard


# --- versions --verify refused --------------------------------------------------------------


def test_a_refused_version_is_rejected_again_without_a_download_until_its_object_changes() -> None:
    v2 = obj("m/2.zip", generation=5)
    refusal = Refusal(fp(v2), "check", "gs://b/p/m/2.zip: --verify refused m/2: exited 1: bad")
    local = LocalView({}, frozenset(), refused={"m/2": refusal})
    plan = plan_of([obj("m/1.zip"), v2], local)
    assert installs(plan) == {"m/1": "new"}
    [rejection] = plan.rejections
    assert (rejection.id, rejection.refused) == ("m/2", True)
    assert rejection.message.startswith(refusal.message)
    changed = plan_of([obj("m/1.zip"), obj("m/2.zip", generation=6)], local)
    assert installs(changed) == {"m/1": "new", "m/2": "new"}
    assert changed.rejections == ()


def test_a_refused_replacement_keeps_the_installed_version() -> None:
    old = obj("m/2.zip", generation=5)
    new = obj("m/2.zip", generation=6)
    refusal = Refusal(fp(new), "check", "refused")
    local = LocalView(
        {"m/2": Managed("m", "2", fp(old))}, frozenset({"m/2"}), refused={"m/2": refusal}
    )
    plan = plan_of([new], local)
    assert plan.installs == plan.prunes == plan.unmanaged == ()
    assert [r.id for r in plan.rejections] == ["m/2"]
