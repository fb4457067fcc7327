"""Properties of the planner: applying a plan makes the local side mirror the bucket, and
planning again changes nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gcs_model_sync.layout import RemoteObject, group, split_id
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import PENDING, Managed
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.plan.versions import versions_of
from tests.support.plans import P, has_changes, obj, plan_of, view

MODELS = ["", "a", "b/c"]


def _number(vid: str) -> tuple[str, int]:
    model, version = split_id(vid)
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
        model, version = split_id(vid)
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
