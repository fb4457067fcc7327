"""--model-files: which model-level files a plan writes, removes, or leaves alone."""

from __future__ import annotations

from gcs_model_sync.layout import group
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import ManagedFile
from gcs_model_sync.plan.plan import Plan, make_plan
from tests.support.plans import P, files_plan, obj


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
