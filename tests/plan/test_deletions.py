"""Every decision about what may be deleted: a table of (plan, failures) -> decision, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gcs_model_sync.layout import RemoteObject, group, model_files
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import Managed, ManagedFile
from gcs_model_sync.plan import deletions
from gcs_model_sync.plan.completeness import Rules
from gcs_model_sync.plan.deletions import Decision, decide, free_first
from gcs_model_sync.plan.files_plan import FileChange
from gcs_model_sync.plan.plan import Plan, PlanOptions, make_plan
from gcs_model_sync.report import Failure, FailureKind
from tests.support.plans import files_plan, fp, obj, plan_of, prunes, view

CONTENT, REMOTE, LOCAL = FailureKind.CONTENT, FailureKind.REMOTE, FailureKind.LOCAL


def failed(kind: FailureKind, model: str | None = "m") -> Failure:
    return Failure(model, f"{model}/9" if model else None, "it failed", kind)


def keep_one_plan() -> tuple[Plan, LocalView]:
    """m/1 and n/1 outside --keep 1 (m/2, n/2 are newer): two candidates in two models."""
    objects = [obj(f"{m}/{n}.zip") for m in ("m", "n") for n in (1, 2)]
    managed = [Managed(m, "1", fp(obj(f"{m}/1.zip"))) for m in ("m", "n")]
    local = view(managed, {"m/1", "n/1"})
    return plan_of(objects, local, keep=1), local


def ids(decision: Decision) -> dict[str, list[str]]:
    return {
        "prune": [p.managed.id for p in decision.prune],
        "held": [p.managed.id for p in decision.held],
        "skipped": [p.managed.id for p in decision.skipped],
    }


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        ([], {"prune": ["m/1", "n/1"], "held": [], "skipped": []}),
        # a bad upload of m holds back m's deletions only
        ([failed(CONTENT)], {"prune": ["n/1"], "held": ["m/1"], "skipped": []}),
        # a version too big for the disk: deleting elsewhere is what gives room back
        ([failed(FailureKind.SPACE)], {"prune": ["n/1"], "held": ["m/1"], "skipped": []}),
        # rclone's rule: a failed read, listing or disk write holds back every deletion
        ([failed(REMOTE, "n")], {"prune": [], "held": [], "skipped": ["m/1", "n/1"]}),
        ([failed(LOCAL, None)], {"prune": [], "held": [], "skipped": ["m/1", "n/1"]}),
        ([failed(CONTENT), failed(FailureKind.LISTING, None)],
         {"prune": [], "held": [], "skipped": ["m/1", "n/1"]}),
    ],
)  # fmt: skip
def test_decide_follows_the_failures_of_the_pass(
    failures: list[Failure], expected: dict[str, list[str]]
) -> None:
    plan, _local = keep_one_plan()
    assert prunes(plan) == {"m/1": "outside --keep 1", "n/1": "outside --keep 1"}
    decision = decide(plan, failures)
    assert ids(decision) == expected
    assert decision.refused is None


def test_a_guard_refuses_every_deletion_unless_a_read_failed_first() -> None:
    objects = [obj(f"m/{n}.zip") for n in (1, 2, 3)]
    managed = [Managed("m", n, fp(obj(f"m/{n}.zip"))) for n in ("1", "2")]
    plan = plan_of(objects, view(managed, {"m/1", "m/2"}), keep=1, max_delete=1)
    assert plan.guard == "2 deletions planned, more than --max-delete 1"
    assert decide(plan, []) == Decision(refused=plan.guard)
    assert decide(plan, [failed(CONTENT)]) == Decision(refused=plan.guard)
    assert ids(decide(plan, [failed(REMOTE)]))["skipped"] == ["m/1", "m/2"]


def test_each_version_kept_has_its_reason_once_for_the_log_and_for_plan() -> None:
    plan, _local = keep_one_plan()
    held = decide(plan, [failed(CONTENT)])
    assert {p.managed.id: why for p, why in held.why.items()} == {"m/1": deletions.HELD}
    skipped = decide(plan, [failed(REMOTE, "n")])
    assert set(skipped.why.values()) == {deletions.SKIPPED}
    gated = decide(gated_plan(), [], {"m": 2})
    assert {p.managed.id: why for p, why in gated.why.items()} == {
        "m/2": "the server serves version 2, none newer"
    }
    assert decide(gated_plan(), [], {"m": None}).why[gated.gated[0]] == (
        "the server serves no version, none newer"
    )


def test_a_held_model_file_says_whether_its_model_or_the_pass_holds_it() -> None:
    decision = decide(two_models_with_files(), [failed(CONTENT, "n"), failed(LOCAL, None)])
    assert {f.id: why for f, why in decision.why.items()} == {
        "n/config.pbtxt": deletions.FILE_BUSY,
        "n/old.txt": deletions.FILE_BUSY,
    }
    removal_blocked = decide(two_models_with_files(), [failed(LOCAL, None)])
    files = {f.id: why for f, why in removal_blocked.why.items() if isinstance(f, FileChange)}
    assert files == {"n/old.txt": deletions.FILE_NO_DELETION}


def test_nothing_to_delete_decides_nothing() -> None:
    plan = plan_of([obj("m/1.zip")], view())
    assert decide(plan, [failed(REMOTE)]) == Decision()


def test_free_first_spares_the_newest_installed_version_and_obeys_the_guards() -> None:
    """What a full disk may free before installing (rclone's delete-before): versions the
    plan removes anyway, never a model's newest on disk, never past a guard."""
    objects = [obj(f"m/{n}.zip") for n in (1, 2, 3)]
    managed = [Managed("m", "1", fp(objects[0])), Managed("m", "2", fp(objects[1]))]
    managed += [Managed("gone", "5", "zip:1"), Managed("gone", "7", "zip:1")]
    local = view(managed, {"m/1", "m/2", "gone/5", "gone/7"})
    plan = plan_of(objects, local, keep=2)
    assert prunes(plan) == {
        "m/1": "outside --keep 2",
        "gone/5": "removed from the bucket",
        "gone/7": "removed from the bucket",
    }
    # gone/7 is that model's newest version on disk: it is pruned at the end, never early.
    assert {p.managed.id for p in free_first(plan, local)} == {"m/1", "gone/5"}

    guarded = plan_of(objects, local, keep=2, max_delete=1)
    assert guarded.guard is not None
    assert free_first(guarded, local) == ()

    # A rejected version holds back its model's prunes, early ones too.
    rejected = plan_of([*objects, obj("m/0003.tgz")], local, keep=2)
    assert [r.model for r in rejected.rejections] == ["m"]
    assert {p.managed.id for p in free_first(rejected, local)} == {"gone/5"}


@pytest.mark.parametrize(
    ("served", "freed"),
    [
        ({"m": 2, "gone": 7}, {"m/1", "gone/5"}),
        ({"m": 1, "gone": 7}, {"gone/5"}),  # still serves m/1: a failed load of m/2 left it
        ({"m": None, "gone": None}, set()),  # serves none of them, or could not be asked
        ({}, set()),
    ],
)
def test_a_full_disk_frees_only_versions_the_server_has_moved_on_from(
    served: dict[str, int | None], freed: set[str]
) -> None:
    objects = [obj(f"m/{n}.zip") for n in (1, 2, 3)]
    managed = [Managed("m", "1", fp(objects[0])), Managed("m", "2", fp(objects[1]))]
    managed += [Managed("gone", "5", "zip:1"), Managed("gone", "7", "zip:1")]
    local = view(managed, {"m/1", "m/2", "gone/5", "gone/7"})
    plan = plan_of(objects, local, keep=2)
    assert {p.managed.id for p in free_first(plan, local, served)} == freed


# --- model files and the model server ------------------------------------------------------


def files_of(decision: Decision) -> dict[str, list[str]]:
    return {
        "files": sorted(f.id for f in decision.files),
        "held": sorted(f.id for f in decision.files_held),
    }


def two_models_with_files() -> Plan:
    """m and n each get a new config.pbtxt; n also loses a file it had."""
    objects = [obj(f"{m}/{f}") for m in ("m", "n") for f in ("1.zip", "config.pbtxt")]
    gone = ManagedFile("n", "old.txt", 1)
    return files_plan(objects, [gone], {gone.id})


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        ([], {"files": ["m/config.pbtxt", "n/config.pbtxt", "n/old.txt"], "held": []}),
        # a model whose version failed keeps its files: a new config must not name it yet
        ([failed(CONTENT, "n")], {"files": ["m/config.pbtxt"],
                                  "held": ["n/config.pbtxt", "n/old.txt"]}),
        ([failed(REMOTE, "m")], {"files": ["n/config.pbtxt"],
                                 "held": ["m/config.pbtxt", "n/old.txt"]}),
        # a disk error elsewhere: writes go on, no removal happens (rclone's rule)
        ([failed(LOCAL, None)], {"files": ["m/config.pbtxt", "n/config.pbtxt"],
                                 "held": ["n/old.txt"]}),
    ],
)  # fmt: skip
def test_model_files_change_only_when_their_model_is_in_place(
    failures: list[Failure], expected: dict[str, list[str]]
) -> None:
    assert files_of(decide(two_models_with_files(), failures)) == expected


def test_model_files_wait_while_a_version_of_their_model_is_still_uploading() -> None:
    uploading = RemoteObject("p/m/2/saved_model.pb", 1, 10, updated="2026-12-01T00:00:00Z")
    objects = [obj("m/1.zip"), obj("m/config.pbtxt"), uploading]
    now = datetime(2026, 12, 1, 0, 0, 10, tzinfo=UTC).timestamp()  # 10 s after its upload
    plan = make_plan(
        group(objects, "p/"),
        view(),
        PlanOptions(rules=Rules(now, settle=60.0)),
        files=model_files(objects, "p/", {"m"}),
    )
    assert [w.id for w in plan.waiting] == ["m/2"]
    assert files_of(decide(plan, [])) == {"files": [], "held": ["m/config.pbtxt"]}
    settled = make_plan(
        group(objects, "p/"),
        view(),
        PlanOptions(rules=Rules(now + 60, settle=60.0)),
        files=model_files(objects, "p/", {"m"}),
    )
    assert files_of(decide(settled, [])) == {"files": ["m/config.pbtxt"], "held": []}


def gated_plan() -> Plan:
    """m/1 and m/2 installed, m/3 new; --keep 1 prunes m/1 and m/2 once m/3 is in."""
    objects = [obj(f"m/{n}.zip") for n in (1, 2, 3)]
    managed = [Managed("m", str(n), fp(obj(f"m/{n}.zip"))) for n in (1, 2)]
    return plan_of(objects, view(managed, {"m/1", "m/2"}), keep=1)


@pytest.mark.parametrize(
    ("served", "pruned", "gated"),
    [
        (None, ["m/1", "m/2"], []),  # no --server: nothing to wait for
        ({"m": None}, [], ["m/1", "m/2"]),  # serves nothing (or could not be asked)
        ({"m": 2}, ["m/1"], ["m/2"]),  # still reads m/2
        ({"m": 3}, ["m/1", "m/2"], []),
    ],
)
def test_a_superseded_version_is_deleted_only_once_the_server_serves_a_newer_one(
    served: dict[str, int | None] | None, pruned: list[str], gated: list[str]
) -> None:
    decision = decide(gated_plan(), [], served)
    assert [p.managed.id for p in decision.prune] == pruned
    assert [p.managed.id for p in decision.gated] == gated


def test_the_newest_version_removed_from_the_bucket_is_never_waited_for() -> None:
    """A rollback: the server serves m/2 and will not move to m/1 until m/2 is gone."""
    managed = [Managed("m", str(n), fp(obj(f"m/{n}.zip"))) for n in (1, 2)]
    plan = plan_of([obj("m/1.zip")], view(managed, {"m/1", "m/2"}))
    decision = decide(plan, [], {"m": 2})
    assert [p.managed.id for p in decision.prune] == ["m/2"]


def test_a_rollout_failure_holds_its_own_model_only() -> None:
    plan, _local = keep_one_plan()
    decision = decide(plan, [failed(FailureKind.ROLLOUT, "m")])
    assert ids(decision) == {"prune": ["n/1"], "held": ["m/1"], "skipped": []}


# --- symbolic links below DEST: what would go through one leaves the plan ---
