"""No change below DEST goes through a symbolic link: the check, and what it takes out of a
plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs_model_sync.local import safepath
from gcs_model_sync.local.safepath import LinkRefused, OwnFolderLinked


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
