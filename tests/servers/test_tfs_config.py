"""The TF Serving config file: what we render parses back, and writes are atomic and lazy."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs_model_sync.errors import SyncError
from gcs_model_sync.servers.tfs_config import model_name, models_for, render, write_if_changed

# --- a small protobuf text-format parser, enough for ModelServerConfig -------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>-?[0-9]+)
      | (?P<punct>[{}:])
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", '"': b'"', "'": b"'"}


def _unquote(literal: str) -> str:
    """Decode a text-format string literal: escapes, including octal bytes, then UTF-8."""
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
        elif m := re.match(r"[0-7]{1,3}", body[i + 1 :]):
            out.append(int(m.group(), 8))
            i += 1 + len(m.group())
        else:
            out += _ESCAPES[body[i + 1]]
            i += 2
    return out.decode("utf-8")


_SCALARS: dict[str, Callable[[str], Any]] = {"string": _unquote, "number": int, "ident": str}


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, tokens = 0, []
    while text[pos:].strip():
        m = _TOKEN.match(text, pos)
        assert m, f"unexpected input at {text[pos : pos + 20]!r}"
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def parse(text: str) -> dict[str, list[Any]]:
    """Text format -> {field: [values]}; a message value is again such a dict."""
    tokens = _tokens(text)

    def message(i: int, closing: bool) -> tuple[dict[str, list[Any]], int]:
        fields: dict[str, list[Any]] = {}
        while i < len(tokens):
            kind, value = tokens[i]
            if kind == "punct" and value == "}":
                assert closing, "unbalanced '}'"
                return fields, i + 1
            assert kind == "ident", f"expected a field name, got {value!r}"
            nxt = tokens[i + 1]
            if nxt == ("punct", "{"):
                sub, i = message(i + 2, closing=True)
                fields.setdefault(value, []).append(sub)
                continue
            assert nxt == ("punct", ":"), f"expected ':' after {value}"
            vkind, raw = tokens[i + 2]
            fields.setdefault(value, []).append(_SCALARS[vkind](raw))
            i += 3
        assert not closing, "missing '}'"
        return fields, i

    return message(0, closing=False)[0]


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
