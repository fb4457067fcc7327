"""The TF Serving config file: what we render parses back, and writes are atomic and lazy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs_model_sync.errors import SyncError
from gcs_model_sync.plan.pins import Serving
from gcs_model_sync.servers.tfs_config import model_name, models_for, render, write_if_changed
from tests.support.textformat import parse


def configs(text: str) -> list[tuple[str, str, str]]:
    """(name, base_path, model_platform) of each config, in file order."""
    top = parse(text)
    assert list(top) == ["model_config_list"]
    (config_list,) = top["model_config_list"]
    out = []
    for config in config_list.get("config", []):
        assert set(config) == {"name", "base_path", "model_platform"}
        out.append((config["name"][0], config["base_path"][0], config["model_platform"][0]))
    return out


# --- render --------------------------------------------------------------------------------------


def test_render_matches_the_documented_layout() -> None:
    assert render({"resnet": Path("/models/resnet")}) == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "resnet"\n'
        '    base_path: "/models/resnet"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        "}\n"
    )


def test_render_is_sorted_and_round_trips() -> None:
    models = {
        "zeta": Path("/models/zeta"),
        "alpha": Path("/models/alpha"),
        "team_bert": Path("/models/team/bert"),
    }
    text = render(models)
    assert configs(text) == [
        ("alpha", "/models/alpha", "tensorflow"),
        ("team_bert", "/models/team/bert", "tensorflow"),
        ("zeta", "/models/zeta", "tensorflow"),
    ]
    assert render(dict(reversed(list(models.items())))) == text


def test_render_writes_a_specific_policy_and_labels_as_model_server_config_proto_names_them() -> (
    None
):
    told = {"resnet": Serving((1, 3), {"canary": 3, "stable": 1})}
    text = render({"resnet": Path("/m/resnet"), "bert": Path("/m/bert")}, told)
    bert, resnet = parse(text)["model_config_list"][0]["config"]
    assert "model_version_policy" not in bert  # the server's default: latest 1
    assert resnet["model_version_policy"] == [{"specific": [{"versions": [1, 3]}]}]
    assert resnet["version_labels"] == [
        {"key": ["canary"], "value": [3]},
        {"key": ["stable"], "value": [1]},
    ]


def test_render_of_no_models_is_an_empty_list() -> None:
    assert configs(render({})) == []


def test_render_escapes_quotes_backslashes_and_control_characters() -> None:
    name = 'we"ird\\na\nme\t\x01\x7f é'
    text = render({name: Path('/models/a "b"\\c')})
    assert "\n".join(text.splitlines()[2:4]) == (
        '    name: "we\\"ird\\\\na\\nme\\t\\001\\177 é"\n    base_path: "/models/a \\"b\\"\\\\c"'
    )
    assert configs(text) == [(name, '/models/a "b"\\c', "tensorflow")]


_names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(st.dictionaries(_names, _names, max_size=5))
def test_any_names_and_paths_round_trip(raw: dict[str, str]) -> None:
    models = {name: Path("/models") / tail for name, tail in raw.items()}
    expected = sorted((name, str(path), "tensorflow") for name, path in models.items())
    assert configs(render(models)) == expected


def test_render_refuses_relative_base_paths_and_empty_names() -> None:
    with pytest.raises(ValueError, match="absolute"):
        render({"resnet": Path("models/resnet")})
    with pytest.raises(ValueError, match="empty"):
        render({"": Path("/models")})


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [("resnet", "resnet"), ("team/resnet", "team_resnet"), ("a/b/c", "a_b_c"), ("x/", "x")],
)
def test_model_name(path: str, name: str) -> None:
    assert model_name(path) == name


@pytest.mark.parametrize("path", ["", "/", "a//b"])
def test_model_name_refuses_empty_parts(path: str) -> None:
    with pytest.raises(ValueError, match="not a model path"):
        model_name(path)


def test_models_for_maps_names_to_absolute_base_paths(tmp_path: Path) -> None:
    dest = tmp_path / "models"
    assert models_for(dest, ["team/bert", "resnet", "resnet"]) == {
        "resnet": dest / "resnet",
        "team_bert": dest / "team" / "bert",
    }


def test_models_for_names_a_single_model_prefix_after_dest(tmp_path: Path) -> None:
    dest = tmp_path / "resnet"
    assert models_for(dest, [""]) == {"resnet": dest}


def test_models_for_refuses_names_that_clash(tmp_path: Path) -> None:
    with pytest.raises(SyncError, match=r"'a/b_c' and 'a_b/c' would both be served as 'a_b_c'"):
        models_for(tmp_path, ["a_b/c", "a/b_c"])


# --- write_if_changed --------------------------------------------------------------------------


def test_write_creates_the_file(tmp_path: Path) -> None:
    target = tmp_path / "models.config"
    text = render({"resnet": Path("/models/resnet")})
    assert write_if_changed(target, text) is True
    assert target.read_text(encoding="utf-8") == text
    assert target.stat().st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["models.config"]


def test_equal_content_is_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "models.config"
    text = render({"resnet": Path("/models/resnet")})
    write_if_changed(target, text)
    past = 1_000_000_000
    os.utime(target, (past, past))
    before = target.stat()
    assert write_if_changed(target, text) is False
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.listdir(tmp_path) == ["models.config"]


def test_changed_content_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "models.config"
    write_if_changed(target, render({"resnet": Path("/models/resnet")}))
    old_inode = target.stat().st_ino
    new = render({"resnet": Path("/models/resnet"), "bert": Path("/models/bert")})
    assert write_if_changed(target, new) is True
    assert target.read_text(encoding="utf-8") == new
    assert target.stat().st_ino != old_inode  # a new file renamed over, never edited in place
    assert [name for name, _, _ in configs(target.read_text(encoding="utf-8"))] == [
        "bert",
        "resnet",
    ]
    assert os.listdir(tmp_path) == ["models.config"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "models.config"
    old = render({"resnet": Path("/models/resnet")})
    write_if_changed(target, old)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        write_if_changed(target, render({}))
    assert target.read_text(encoding="utf-8") == old
    assert os.listdir(tmp_path) == ["models.config"]


def test_a_config_below_dest_is_never_written_through_a_linked_folder(tmp_path: Path) -> None:
    dest, outside = tmp_path / "models", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "conf").symlink_to(outside)
    with pytest.raises(OSError, match="symbolic link"):
        write_if_changed(dest / "conf" / "models.config", render({}), dest)
    assert list(outside.iterdir()) == []
    # outside DEST, a path the user gives is followed as given
    assert write_if_changed(outside / "models.config", render({}), dest) is True
