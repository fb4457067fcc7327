"""sources.py: a source's dest is a sub-folder of --dest, and no two sources share one."""

from __future__ import annotations

import pytest

from gcs_model_sync.errors import ConfigError
from gcs_model_sync.sources import overlap, sub_folder


@pytest.mark.parametrize(
    ("text", "folder"), [("vision", "vision"), ("./team//nlp/", "team/nlp"), ("a/./b", "a/b")]
)
def test_a_sub_folder_is_its_normal_relative_path(text: str, folder: str) -> None:
    assert sub_folder(text) == folder


@pytest.mark.parametrize("text", ["", " ", ".", "/abs", "../up", "a/../../b", "a/..", 3, None])
def test_what_would_leave_dest_or_be_dest_itself_is_refused(text: object) -> None:
    with pytest.raises(ConfigError, match="dest"):
        sub_folder(text)


def test_the_tools_own_folder_is_refused() -> None:
    with pytest.raises(ConfigError, match="own folder"):
        sub_folder(".gcs-model-sync/x")


def test_the_same_or_nested_folders_overlap_and_siblings_do_not() -> None:
    assert overlap(["a", "b", "ab", "a-b"]) is None
    assert overlap(["a", "b", "a"]) == ("a", "a")
    assert overlap(["x/y", "x"]) == ("x/y", "x")
    assert overlap(["x", "x/y/z"]) == ("x", "x/y/z")
