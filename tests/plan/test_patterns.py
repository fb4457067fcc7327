"""rclone's glob syntax, as --include and --exclude read it."""

from __future__ import annotations

import pytest

from gcs_model_sync.plan.patterns import Filters, Pattern, PatternError


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.onnx", "resnet/1/model.onnx", True),  # any depth: the last segment
        ("*.onnx", "resnet/1/model.onnx.bak", False),
        ("*", "resnet/1/a", True),
        ("1/*.md", "resnet/1/notes.md", True),  # whole trailing segments
        ("1/*.md", "resnet/11/notes.md", False),  # never part of a segment
        ("/1/*.md", "resnet/1/notes.md", False),  # anchored at the prefix
        ("/resnet/*/model.onnx", "resnet/1/model.onnx", True),
        ("/resnet/*", "resnet/1/model.onnx", False),  # * stays in its segment
        ("/resnet/**", "resnet/1/variables/v.index", True),
        ("checkpoints/**", "m/1/checkpoints/a/b", True),
        ("checkpoints/", "m/1/checkpoints/a/b", True),  # a folder: what lies below it
        ("checkpoints/", "m/1/checkpoints", False),  # a file of that name is no folder
        ("/legacy/", "team/legacy/1/a", False),
        ("model.?nnx", "m/1/model.onnx", True),
        ("model.?nnx", "m/1/model./nnx", False),
        ("[a-c]*.pb", "m/1/b.pb", True),
        ("[!a-c]*.pb", "m/1/b.pb", False),
        ("[!a-c]*.pb", "m/1/saved_model.pb", True),
        ("[]]x", "m/1/]x", True),  # `]` first is part of the class
        ("m[/]x", "m/x", False),  # a class never matches `/`
        ("*.{onnx,plan}", "m/1/model.plan", True),
        ("{a/**,*.md}", "a/1/x", True),
        ("{a/**,*.md}", "b/1/x", False),
        (r"\*.md", "m/1/*.md", True),
        (r"\*.md", "m/1/x.md", False),
        ("a.b", "m/1/aXb", False),  # regex characters are literal
    ],
)
def test_a_pattern_matches_as_rclone_says(pattern: str, path: str, matches: bool) -> None:
    assert Pattern.parse(pattern).matches(path) is matches


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("[abc", "unclosed ["),
        ("{a,b", "unclosed {"),
        ("a}", "unmatched }"),
        ("{{.*}}", "{{regexp}} is not supported"),
        ("", "names no path"),
        ("/", "names no path"),
        ("x\\", "lone backslash"),
        ("[z-a]", "bad character class"),
    ],
)
def test_a_pattern_that_is_no_glob_is_refused(pattern: str, why: str) -> None:
    with pytest.raises(PatternError, match=why.replace("{", r"\{").replace("[", r"\[")):
        Pattern.parse(pattern)


def test_an_exclude_wins_and_an_include_keeps_only_what_it_matches() -> None:
    f = Filters.parse(("/prod/**",), ("*.md",))
    assert f.keeps("prod/m/1/model.onnx")
    assert not f.keeps("prod/m/1/notes.md")  # excluded, though included
    assert not f.keeps("dev/m/1/model.onnx")  # no include matches
    assert Filters().keeps("anything")
    assert not Filters().active


@pytest.mark.parametrize(
    ("include", "exclude", "folder", "drops"),
    [
        ((), ("legacy/",), "legacy", True),
        ((), ("legacy/",), "team/legacy/3", True),
        ((), ("/legacy/**",), "legacy", True),
        ((), ("/legacy/**",), "team/legacy", False),
        ((), ("**",), "m", True),
        ((), ("*.md",), "m", False),  # only some of what is below
        ((), ("legacy",), "legacy", False),  # a file pattern names no folder's contents
        (("/prod/**",), (), "dev/resnet", True),
        (("/prod/**",), (), "prod/resnet", False),
        (("/prod/*/1/**",), (), "prod/resnet/2", True),
        (("/prod/*/1/**",), (), "prod/resnet/1", False),
        (("/prod/m",), (), "prod/m", True),  # the file prod/m: nothing below the folder
        (("/prod/m/",), (), "prod/m/1", False),
        (("*.onnx",), (), "dev/resnet", False),  # may be anywhere
        (("/{prod,dev}/**",), (), "other", False),  # unsure: kept
    ],
)
def test_a_folder_is_dropped_only_when_nothing_below_it_can_be_kept(
    include: tuple[str, ...], exclude: tuple[str, ...], folder: str, drops: bool
) -> None:
    f = Filters.parse(include, exclude)
    assert f.drops_folder(folder) is drops
    if drops:  # never dropped while a path below it would be kept
        assert not f.keeps(f"{folder}/1/model.onnx")
