"""What --include/--exclude and --refuse-pickle take out of a listing, and leave alone."""

from __future__ import annotations

from gcs_model_sync.layout import RemoteObject, group
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import Managed
from gcs_model_sync.plan import filters
from gcs_model_sync.plan.filters import Rules, member_path
from gcs_model_sync.plan.patterns import Filters
from gcs_model_sync.plan.plan import Plan, make_plan
from tests.support.plans import P, fp, installs, obj, prunes, view


def planned(
    objects: list[RemoteObject], local: LocalView, rules: Rules
) -> tuple[Plan, filters.Filtered]:
    """The plan as snapshot.py makes it: filtered, planned, merged."""
    f = filters.apply(group(objects, P), None, local, rules)
    return filters.merged(make_plan(f.groups, f.local), f), f


def excluding(*patterns: str, include: tuple[str, ...] = ()) -> Rules:
    return Rules(Filters.parse(include, patterns))


def test_an_excluded_model_is_not_installed_and_its_installed_versions_are_not_pruned() -> None:
    objects = [obj("resnet/1.zip"), obj("legacy/2.zip")]
    installed = Managed("legacy", "1", "old")  # gone from the bucket, and excluded
    plan, f = planned(objects, view([installed], ["legacy/1"]), excluding("legacy/"))
    assert installs(plan) == {"resnet/1": "new"}
    assert prunes(plan) == {}
    assert plan.forget == ()
    assert plan.unmanaged == ()
    assert (f.models, f.left) == (("legacy",), ("legacy/1",))
    # Without the filter, the same listing prunes it.
    assert prunes(planned(objects, view([installed], ["legacy/1"]), Rules())[0]) == {
        "legacy/1": "removed from the bucket"
    }


def test_a_version_of_a_kept_model_gone_from_the_bucket_is_still_pruned() -> None:
    installed = Managed("resnet", "1", "old")
    plan, _f = planned([obj("resnet/2.zip")], view([installed], ["resnet/1"]), excluding("*.md"))
    assert prunes(plan) == {"resnet/1": "removed from the bucket"}


def test_files_left_out_are_not_in_the_version_and_a_change_to_them_keeps_it_in_sync() -> None:
    kept = obj("m/1/model.onnx")
    objects = [kept, obj("m/1/notes.md"), obj("m/1/ckpt/a")]
    rules = excluding("*.md", "ckpt/")
    plan, f = planned(objects, view(), rules)
    [install] = plan.installs
    assert [e.relpath for e in install.version.entries] == ["model.onnx"]
    assert f.excluded == {"m/1": 2}
    installed = Managed("m", "1", fp(kept), objects={"model.onnx": 1, "notes.md": 1})
    changed = [kept, obj("m/1/notes.md", generation=9)]
    again, _f = planned(changed, view([installed], ["m/1"]), rules)
    assert again.in_sync == ("m/1",)
    assert again.waiting == ()


def test_a_new_exclude_reinstalls_without_the_file_and_is_no_delete_in_progress() -> None:
    a, b = obj("m/1/model.onnx"), obj("m/1/notes.md")
    installed = Managed("m", "1", fp(a, b), objects={"model.onnx": 1, "notes.md": 1})
    plan, _f = planned([a, b], view([installed], ["m/1"]), excluding("*.md"))
    assert installs(plan) == {"m/1": "changed"}
    assert plan.waiting == ()


def test_a_folder_version_whose_every_file_is_left_out_is_left_alone() -> None:
    installed = Managed("m", "1", "old")
    plan, f = planned([obj("m/1/notes.md")], view([installed], ["m/1"]), excluding("*.md"))
    assert (plan.installs, plan.prunes) == ((), ())
    assert (f.versions, f.left) == (("m/1",), ("m/1",))


def test_an_include_keeps_only_the_models_it_can_match() -> None:
    objects = [obj("prod/a/1/model.onnx"), obj("prod/a/1/x.log"), obj("dev/a/1/model.onnx")]
    plan, f = planned(objects, view(), Rules(Filters.parse(("/prod/**.onnx",), ())))
    assert installs(plan) == {"prod/a/1": "new"}
    assert f.models == ("dev/a",)
    assert f.excluded == {"prod/a/1": 1}


def test_the_ready_marker_is_always_kept() -> None:
    objects = [obj("m/1/model.onnx"), obj("m/1/_SUCCESS")]
    rules = Rules(Filters.parse(("*.onnx",), ()), ready_marker="_SUCCESS")
    _plan, f = planned(objects, view(), rules)
    [entries] = f.groups.values()
    assert sorted(e.relpath for e in entries) == ["_SUCCESS", "model.onnx"]


def test_refuse_pickle_rejects_a_folder_version_by_name_and_keeps_the_installed_one() -> None:
    objects = [obj("m/1/model.onnx"), obj("m/2/model.onnx"), obj("m/2/tok.PKL"), obj("n/1/w.pt")]
    installed = Managed("m", "1", fp(objects[0]), objects={"model.onnx": 1})
    old = Managed("n", "1", "installed before the option")
    local = view([installed, old], ["m/1", "n/1"])
    plan, f = planned(objects, local, Rules(refuse_pickle=True))
    assert [r.message for r in plan.rejections] == [
        f"{P}m/2/tok.PKL: tok.PKL is a pickle format, refused by --refuse-pickle (unpickling "
        "runs code); not installed",
        f"{P}n/1/w.pt: w.pt is a pickle format, refused by --refuse-pickle (unpickling runs "
        "code); not installed",
    ]
    assert plan.installs == ()
    assert plan.prunes == ()
    assert plan.in_sync == ("m/1",)
    assert f.left == ("n/1",)
    # A `.bin` is judged by its bytes, when they are read: not from the listing.
    assert planned([obj("v/1/model.bin")], view(), Rules(refuse_pickle=True))[0].rejections == ()


def test_a_listing_the_filters_empty_says_so() -> None:
    plan, _f = planned([obj("m/1.zip")], view(), excluding("m/"))
    assert plan.empty is not None
    assert "--include/--exclude left out 1 model(s)" in plan.empty


def test_without_rules_nothing_changes() -> None:
    groups = group([obj("m/1/a.md")], P)
    local = view()
    f = filters.apply(groups, None, local, Rules())
    assert f.groups is groups
    assert f.local is local


def test_an_archive_member_is_matched_below_its_version_without_the_version_folder() -> None:
    assert member_path("m", "0002", "2/model.onnx") == "m/0002/model.onnx"
    assert member_path("m", "0002", "0002/a/b") == "m/0002/a/b"
    assert member_path("m", "2", "other/x") == "m/2/other/x"
    assert member_path("", "3", "model.onnx") == "3/model.onnx"
