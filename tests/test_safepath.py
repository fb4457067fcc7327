"""No change below DEST goes through a symbolic link: the check, and what it takes out of a
plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs_model_sync import safepath
from gcs_model_sync.layout import Form, RemoteObject
from gcs_model_sync.local import Managed
from gcs_model_sync.plan import FileChange, Install, Plan, Prune, RemoteVersion
from gcs_model_sync.report import FailureKind
from gcs_model_sync.safepath import LinkRefused, OwnFolderLinked


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    (tmp_path / "dest" / "m" / "1").mkdir(parents=True)
    (tmp_path / "outside" / "1").mkdir(parents=True)
    return tmp_path / "dest"


def test_a_plain_path_has_no_link(dest: Path) -> None:
    assert safepath.first_link(dest, dest / "m" / "1") is None
    safepath.check(dest, dest / "m" / "1")


def test_the_first_link_below_dest_is_named(dest: Path) -> None:
    (dest / "n").symlink_to(dest.parent / "outside")
    assert safepath.first_link(dest, dest / "n" / "1" / "x") == dest / "n"
    with pytest.raises(LinkRefused) as caught:
        safepath.check(dest, dest / "n" / "1")
    assert caught.value.filename == str(dest / "n")
    assert "symbolic link" in str(caught.value)


def test_the_path_itself_counts_but_not_for_a_change_of_its_own_entry(dest: Path) -> None:
    (dest / "m" / "3").symlink_to(dest.parent / "outside")
    assert safepath.first_link(dest, dest / "m" / "3") == dest / "m" / "3"
    safepath.check_parent(dest, dest / "m" / "3")  # a rename or unlink of the link itself
    safepath.check_parent(dest, dest / "top-level-file")


def test_what_does_not_exist_yet_is_no_link(dest: Path) -> None:
    assert safepath.first_link(dest, dest / "new" / "deeper" / "1") is None


def test_a_file_where_a_folder_is_expected_ends_the_walk(dest: Path) -> None:
    (dest / "f").write_text("x")
    assert safepath.first_link(dest, dest / "f" / "1") is None


def test_dest_itself_may_be_a_link(dest: Path) -> None:
    alias = dest.parent / "alias"
    alias.symlink_to(dest)
    assert safepath.first_link(alias, alias / "m" / "1") is None


def test_a_dangling_link_is_a_link(dest: Path) -> None:
    (dest / "gone").symlink_to(dest.parent / "nowhere")
    assert safepath.first_link(dest, dest / "gone" / "1") == dest / "gone"


def test_own_folders_refuse_the_pass_in_one_line(dest: Path) -> None:
    (dest / ".gcs-model-sync").symlink_to(dest.parent / "outside")
    with pytest.raises(OwnFolderLinked) as caught:
        safepath.check_own(dest, [dest / ".gcs-model-sync" / "trash"])
    message = str(caught.value)
    assert message.startswith(f"{dest / '.gcs-model-sync'}: a symbolic link")
    assert "\n" not in message
    assert caught.value.exit_code == 1


def _version(model: str, version: str) -> RemoteVersion:
    obj = RemoteObject(f"models/{model}/{version}.zip", 1, 10)
    return RemoteVersion(model, version, Form.ZIP, (), f"zip:{obj.generation}")


def _plan() -> Plan:
    return Plan(
        installs=(
            Install(_version("m", "2"), "new"),
            Install(_version("n", "2"), "new"),
            Install(_version("team/ranker", "5"), "new"),
            Install(_version("team/scorer", "1"), "new"),
            Install(_version("v", "3"), "changed"),
        ),
        prunes=(
            Prune(Managed("m", "1", "zip:1"), "removed from the bucket"),
            Prune(Managed("n", "1", "zip:1"), "removed from the bucket"),
        ),
        files=(
            FileChange("m", "config.pbtxt", RemoteObject("models/m/config.pbtxt", 1, 3), "new"),
            FileChange("n", "config.pbtxt", None, "removed from the bucket"),
        ),
    )


def test_links_take_their_models_actions_out_of_the_plan_and_name_each_link(
    tmp_path: Path,
) -> None:
    links = {"m", "team", "v/3"}
    plan, failures = safepath.refuse_links(_plan(), tmp_path, links)
    assert [i.version.id for i in plan.installs] == ["n/2"]
    assert [p.managed.id for p in plan.prunes] == ["n/1"]
    assert [f.id for f in plan.files] == ["n/config.pbtxt"]
    assert [(f.model, f.version, f.kind) for f in failures] == [
        ("m", None, FailureKind.LINK),
        ("team/ranker", None, FailureKind.LINK),
        ("team/scorer", None, FailureKind.LINK),
        ("v", "v/3", FailureKind.LINK),
    ]
    assert failures[0].message == (
        f"{tmp_path / 'm'}: a symbolic link below --dest; not followed; "
        "refusing to install m/2, prune m/1, write m/config.pbtxt"
    )


def test_a_link_of_another_model_refuses_nothing(tmp_path: Path) -> None:
    """`m2` and `tea` are not folders above `m` or `team/ranker`: the plan is unchanged."""
    before = _plan()
    plan, failures = safepath.refuse_links(before, tmp_path, {"m2", "tea", "n/3"})
    assert plan is before
    assert failures == ()
