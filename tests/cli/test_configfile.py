"""--config FILE read through the real CLI (commands replaced by a recorder): keys are option
names, values read as the flags read them, flags and variables win, sources get their own
sub-folder; every mistake is one usage error naming the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer

from gcs_model_sync.cli import commands, configfile
from gcs_model_sync.cli import main as cli
from gcs_model_sync.errors import ConfigError
from gcs_model_sync.options import ENV_PREFIX
from gcs_model_sync.sources import Sources


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def got(monkeypatch: pytest.MonkeyPatch) -> list[Sources]:
    """The Sources each command was given."""
    seen: list[Sources] = []

    def record(sources: Sources) -> int:
        seen.append(sources)
        return 0

    for name in ("once", "plan", "status", "run"):
        monkeypatch.setattr(commands, name, record)
    return seen


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_yaml_and_a_toml_file_read_alike_with_the_flags_syntax(
    got: list[Sources], tmp_path: Path
) -> None:
    yaml = write(tmp_path, "a.yaml", "source: gs://bkt/p\nsettle: 1m30s\nslice-size: 8M\n"
                 "model_files: true\nmax_delete: 2\n")  # fmt: skip
    toml = write(tmp_path, "a.toml", 'source = "gs://bkt/p"\nsettle = "1m30s"\n'
                 'slice_size = "8M"\nmodel_files = true\nmax_delete = 2\n')  # fmt: skip
    for path in (yaml, toml):
        assert cli.main(["once", "--config", str(path), "--dest", str(tmp_path / "d")]) == 0
    for sources in got:
        c = sources.first
        assert not sources.many
        assert (c.settle, c.slice_size, c.model_files, c.max_delete) == (90.0, 8 * 1024**2, True, 2)
        assert c.dest == tmp_path / "d"


def test_flag_over_variable_over_source_entry_over_top_level_over_default(
    got: list[Sources], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "s.yaml", "keep: 2\nmax_delete: 5\nsources:\n"
                 "  - {source: gs://bkt-a/p, dest: a, keep: 1, server_timeout: 9}\n"
                 "  - {source: gs://bkt-b/p, dest: b}\n")  # fmt: skip
    monkeypatch.setenv(ENV_PREFIX + "MAX_DELETE", "7")
    args = ["once", "--config", str(path), "--dest", str(tmp_path)]
    assert cli.main([*args, "--server-timeout", "4"]) == 0
    a, b = got[-1].configs
    assert got[-1].names == ("a", "b")
    assert (a.keep, b.keep) == (1, 2)  # the entry, then the top level
    assert (a.max_delete, b.max_delete) == (7, 7)  # the variable over the file
    assert (a.server_timeout, b.server_timeout) == (4.0, 4.0)  # the flag over the entry
    assert (a.settle, a.dest, b.dest) == (60.0, tmp_path / "a", tmp_path / "b")  # default
    assert got[-1].base == tmp_path


def test_a_config_file_can_come_from_its_variable(
    got: list[Sources], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "s.toml", 'dest = "/srv/models"\n[[sources]]\n'
                 'source = "gs://bkt-a/p"\ndest = "team/a"\n')  # fmt: skip
    monkeypatch.setenv(ENV_PREFIX + "CONFIG", str(path))
    assert cli.main(["plan"]) == 0
    assert got[-1].names == ("team/a",)
    assert got[-1].first.dest == Path("/srv/models/team/a")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("keep: [1, 2]\n", "keep: takes one value, not a list"),
        ("keep: {a: 1}\n", "expected a value as on the command line"),
        ("settle: 3x\n", "settle: '3x': not a duration"),
        ("config: other.yaml\n", "unknown key 'config'"),
        ("[not yaml\n", "not valid YAML at line"),
        ("- a\n- b\n", "expected a table of options"),
        ("sources: []\n", "sources must be a list of tables"),
        ("source: gs://bkt-x/p\nsources:\n  - {source: gs://bkt-y/p, dest: a}\n", "not on top"),
        ("sources:\n  - {dest: a}\n", "sources[0]: source is missing"),
        ("sources:\n  - {source: gs://bkt-y/p}\n", "sources[0]: dest is missing"),
        ("sources:\n  - {source: gs://bkt-y/p, dest: /abs}\n", "inside --dest"),
        ("sources:\n  - {source: gs://bkt-y/p, dest: .gcs-model-sync/x}\n", "tool's own folder"),
        ("sources:\n  - {source: gs://bkt-y/p, dest: a}\n  - {source: gs://bkt-z/p, dest: ./a}\n",
         "are the same folder"),
        ("sources:\n  - {source: gs://bkt-y/p, dest: a, http_port: 1}\n", "process-wide"),
        ("sources:\n  - {source: gs://Bad/p, dest: a}\n", "source a: --source"),
        ("tfs_config: /t.conf\nsources:\n  - {source: gs://bkt-y/p, dest: a}\n"
         "  - {source: gs://bkt-z/p, dest: b}\n", "a --tfs-config file of its own"),
    ],
)  # fmt: skip
def test_each_mistake_is_one_usage_error_naming_the_file(
    got: list[Sources], tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, said: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    assert cli.main(["run", "--config", str(path), "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(path) in err[0]
    assert said in err[0]
    assert got == []


def test_a_file_that_is_not_there_or_of_no_known_format_is_a_usage_error(
    got: list[Sources], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, said in ((tmp_path / "none.toml", "No such file"), (tmp_path / "x.ini", ".toml")):
        path.touch() if path.suffix == ".ini" else None
        assert cli.main(["once", "--config", str(path), "--dest", str(tmp_path)]) == 2
        assert said in capsys.readouterr().err
    assert got == []


def test_source_is_required_unless_the_file_gives_sources(
    got: list[Sources], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["once", "--dest", str(tmp_path)]) == 2
    assert "Missing option '--source'" in capsys.readouterr().err
    path = write(tmp_path, "s.yaml", "sources:\n  - {source: gs://bkt-y/p, dest: a}\n")
    assert cli.main(["once", "--config", str(path)]) == 2
    assert "--dest is required" in capsys.readouterr().err
    assert cli.main(["once", "--config", str(path), "--source", "gs://bkt-z/p"]) == 2
    assert "give the sources one way" in capsys.readouterr().err
    assert got == []


def test_a_process_wide_option_at_the_top_level_reaches_every_source(
    got: list[Sources], tmp_path: Path
) -> None:
    path = write(tmp_path, "s.yaml", "interval: 5m\nhttp_port: 9090\nsources:\n"
                 "  - {source: gs://bkt-y/p, dest: a}\n"
                 "  - {source: gs://bkt-z/p, dest: b}\n")  # fmt: skip
    assert cli.main(["run", "--config", str(path), "--dest", str(tmp_path)]) == 0
    assert {(c.interval, c.http_port) for c in got[-1].configs} == {(300.0, 9090)}


def test_a_list_in_the_file_fills_a_repeatable_option() -> None:
    """What --pin MODEL=VERSION or --include GLOB will take: the reader works from the
    command's own parameters, so a repeatable one takes a list (or one value as a list)."""
    app = typer.Typer()
    seen: list[Any] = []

    @app.command()
    def cmd(ctx: typer.Context, pin: Annotated[list[str] | None, typer.Option()] = None) -> None:
        read = configfile.reader(ctx)
        seen.append(read("pin", ["m=1", "n=2"]))
        seen.append(read("pin", "m=3"))

    app(["--pin", "x=0"], standalone_mode=False)
    assert [list(v) for v in seen] == [["m=1", "n=2"], ["m=3"]]
    with pytest.raises(ConfigError):
        configfile._text({"m": 1})
