"""The versions a listing holds: rejections (two spellings, beyond int64, unsafe keys,
refused), spelling clashes with DEST, and --keep ranking numbers, planned as the engine plans."""

from __future__ import annotations

import pytest

from gcs_model_sync.layout import Form, group
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import Managed, Refusal
from gcs_model_sync.plan import deletions
from gcs_model_sync.plan.versions import versions_of
from gcs_model_sync.report import rejected
from tests.support.plans import P, fp, installs, obj, plan_of, prunes, view


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


def test_versions_of_a_grouped_listing() -> None:
    objects = [obj("m/1/a"), obj("m/1/b"), obj("m/2.zip"), obj("n/2.zip")]
    versions, rejections = versions_of(group(objects, P))
    assert rejections == []
    assert sorted((v.id, v.form, len(v.entries)) for v in versions) == [
        ("m/1", Form.FOLDER, 2),
        ("m/2", Form.ZIP, 1),
        ("n/2", Form.ZIP, 1),
    ]


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
