"""The CLI in-process: options and GCS_MODEL_SYNC_* variables become one Config; errors are
one line and an exit code. Commands are replaced by recorders, so nothing reaches a network."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main

from gcs_model_sync import __version__
from gcs_model_sync.cli import commands
from gcs_model_sync.cli import main as cli
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import ConfigError, Interrupted, LockBusy, SyncError
from gcs_model_sync.options import ENV_PREFIX
from gcs_model_sync.sources import Sources

COMMANDS = ["once", "plan", "status", "run"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GCS_MODEL_SYNC_* from the surroundings leaks into a test."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


class Recorder:
    """Stands in for the command functions and keeps the Config each one was given."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, Config]] = []
        self.result: Callable[[], int] = lambda: 0
        for name in COMMANDS:
            monkeypatch.setattr(commands, name, self._make(name))

    def _make(self, name: str) -> Callable[[Sources], int]:
        def run(sources: Sources) -> int:
            assert not sources.many  # every test here gives one source on the command line
            self.calls.append((name, sources.first))
            return self.result()

        return run

    @property
    def config(self) -> Config:
        assert len(self.calls) == 1, self.calls
        return self.calls[0][1]


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return Recorder(monkeypatch)


def options_of(command: str) -> dict[str, tuple[str | None, list[str]]]:
    """What the CLI really declares: parameter name -> (env var, flags)."""
    group: Any = typer.main.get_command(cli.app)
    return {p.name: (p.envvar, list(p.opts)) for p in group.commands[command].params}


# One row per option: (parameter, env value, flag args, Config field, expected from env,
# expected from the flag). Flag and env values differ, so precedence is visible.
def option_table(tmp_path: Path) -> list[tuple[str, str, list[str], str, Any, Any]]:
    return [
        ("source", "gs://env-bkt/env/p", ["--source", "gs://flag-bkt/f"], "source",
         Source("env-bkt", "env/p/"), Source("flag-bkt", "f/")),
        ("dest", str(tmp_path / "env-dest"), ["--dest", str(tmp_path / "flag-dest")], "dest",
         tmp_path / "env-dest", tmp_path / "flag-dest"),
        ("keep", "3", ["--keep", "5"], "keep", 3, 5),
        ("pin", "a=1  team/b=02", ["--pin", "c=3", "--pin", "d=4"], "pin", ("a=1", "team/b=02"),
         ("c=3", "d=4")),
        ("aliases", "labels.json", ["--aliases", ""], "aliases", "labels.json", ""),
        ("allow_empty_source", "1", ["--allow-empty-source"], "allow_empty_source", True, True),
        ("max_delete", "4", ["--max-delete", "6"], "max_delete", 4, 6),
        ("anonymous", "true", ["--anonymous"], "anonymous", True, True),
        ("project", "env-proj", ["--project", "flag-proj"], "project", "env-proj", "flag-proj"),
        ("endpoint", "https://env.example", ["--endpoint", "http://127.0.0.1:9"], "endpoint",
         "https://env.example", "http://127.0.0.1:9"),
        ("endpoint_credentials", "1", ["--endpoint-credentials"], "endpoint_credentials", True,
         True),
        ("billing_project", "env-bill", ["--billing-project", "flag-bill"], "billing_project",
         "env-bill", "flag-bill"),
        ("settle", "5", ["--settle", "0"], "settle", 5.0, 0.0),
        ("ready_marker", "_DONE", ["--ready-marker", "_SUCCESS"], "ready_marker", "_DONE",
         "_SUCCESS"),
        ("log_format", "json", ["--log-format", "text"], "log_format", "json", "text"),
        ("output", "json", ["--output", "text"], "output", "json", "text"),
        ("verbose", "2", ["-v"], "verbosity", 2, 1),
        ("quiet", "0", ["-q"], "verbosity", 0, -1),
        ("workers", "3", ["--workers", "5"], "workers", 3, 5),
        ("connections", "6", ["--connections", "9"], "connections", 6, 9),
        ("slice_size", "2M", ["--slice-size", "8M"], "slice_size", 2 * 1024**2, 8 * 1024**2),
        ("slice_threshold", "0", ["--slice-threshold", "1G"], "slice_threshold", 0, 1024**3),
        ("bwlimit", "200M", ["--bwlimit", "10K"], "bwlimit", 200 * 1024**2, 10 * 1024),
        ("lock_timeout", "1.5", ["--lock-timeout", "2.5"], "lock_timeout", 1.5, 2.5),
        ("retry_attempts", "2", ["--retry-attempts", "9"], "retry_attempts", 2, 9),
        ("retry_deadline", "30", ["--retry-deadline", "40"], "retry_deadline", 30.0, 40.0),
        ("request_timeout", "5", ["--request-timeout", "7"], "request_timeout", 5.0, 7.0),
        ("list_page_size", "10", ["--list-page-size", "20"], "list_page_size", 10, 20),
        ("max_version_size", "10M", ["--max-version-size", "2G"], "max_version_size",
         10 * 1024**2, 2 * 1024**3),
        ("min_free_space", "1K", ["--min-free-space", "512"], "min_free_space", 1024, 512),
        ("link_unchanged", "0", ["--link-unchanged"], "link_unchanged", False, True),
        ("on_change", "echo env", ["--on-change", "echo flag"], "on_change",
         "echo env", "echo flag"),
        ("hook_timeout", "3", ["--hook-timeout", "4"], "hook_timeout", 3.0, 4.0),
        ("tfs_config", str(tmp_path / "env.conf"), ["--tfs-config", str(tmp_path / "f.conf")],
         "tfs_config", tmp_path / "env.conf", tmp_path / "f.conf"),
        ("model_files", "1", ["--model-files"], "model_files", True, True),
        ("include", "/prod/**  *.onnx", ["--include", "a/", "--include", "{b,c}/**"], "include",
         ("/prod/**", "*.onnx"), ("a/", "{b,c}/**")),
        ("exclude", "*.md", ["--exclude", "ckpt/"], "exclude", ("*.md",), ("ckpt/",)),
        ("refuse_pickle", "1", ["--refuse-pickle"], "refuse_pickle", True, True),
        ("verify", "check env", ["--verify", "check flag"], "verify", "check env", "check flag"),
        ("signature_key", str(tmp_path / "env.pem"), ["--signature-key", str(tmp_path / "f.pem")],
         "signature_key", tmp_path / "env.pem", tmp_path / "f.pem"),
        ("require_signature", "1", ["--require-signature"], "require_signature", True, True),
        ("require_digest", "yes", ["--require-digest"], "require_digest", True, True),
        ("server", "http://127.0.0.1:8501", ["--server", "http://[::1]:8000"], "server",
         "http://127.0.0.1:8501", "http://[::1]:8000"),
        ("server_kind", "kserve-v2", ["--server-kind", "triton-explicit"], "server_kind",
         "kserve-v2", "triton-explicit"),
        ("server_timeout", "30", ["--server-timeout", "40"], "server_timeout", 30.0, 40.0),
        ("interval", "5", ["--interval", "6"], "interval", 5.0, 6.0),
        ("jitter", "0.1", ["--jitter", "0.2"], "jitter", 0.1, 0.2),
        ("max_failures", "2", ["--max-failures", "3"], "max_failures", 2, 3),
        ("http_port", "8081", ["--http-port", "8082"], "http_port", 8081, 8082),
        ("http_host", "127.0.0.1", ["--http-host", "::1"], "http_host", "127.0.0.1", "::1"),
        ("stuck_after", "100", ["--stuck-after", "200"], "stuck_after", 100.0, 200.0),
    ]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_its_env_var(tmp_path: Path, command: str) -> None:
    declared = options_of(command)
    # --config is no Config field: tests/cli/test_configfile.py has its flag and variable
    table = {row[0] for row in option_table(tmp_path)} | {"config"}
    assert set(declared) <= table, "add the new option to option_table"
    for name, (envvar, flags) in declared.items():
        assert envvar == ENV_PREFIX + name.upper()
        assert f"--{name.replace('_', '-')}" in flags


@pytest.mark.parametrize("command", COMMANDS)
def test_env_vars_alone_build_the_config(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    declared = options_of(command)
    rows = [row for row in option_table(tmp_path) if row[0] in declared]
    for name, env_value, *_ in option_table(tmp_path):  # the others must be ignored
        monkeypatch.setenv(ENV_PREFIX + name.upper(), env_value)
    assert cli.main([command]) == 0
    assert rec.calls[0][0] == command
    got = {field: getattr(rec.config, field) for _, _, _, field, _, _ in rows}
    expected = {field: from_env for _, _, _, field, from_env, _ in rows}
    if "quiet" in declared:
        expected["verbosity"] = 2  # GCS_MODEL_SYNC_QUIET=0 leaves GCS_MODEL_SYNC_VERBOSE=2
    assert got == expected


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_win_over_env_vars(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    declared = options_of(command)
    rows = [row for row in option_table(tmp_path) if row[0] in declared]
    argv = [command]
    for name, env_value, flags, *_ in rows:
        monkeypatch.setenv(ENV_PREFIX + name.upper(), env_value)
        argv += flags
    # booleans: the variable says no, the flag says yes
    for name in ("allow_empty_source", "anonymous", "quiet"):
        monkeypatch.setenv(ENV_PREFIX + name.upper(), "false")
    assert cli.main(argv) == 0
    got = {field: getattr(rec.config, field) for _, _, _, field, _, _ in rows}
    expected = {field: from_flag for _, _, _, field, _, from_flag in rows}
    assert got == expected  # -q wins over -v: verbosity -1


@pytest.mark.parametrize(
    ("name", "env_value", "args", "field", "expected"),
    [
        ("allow_empty_source", "false", [], "allow_empty_source", False),
        ("allow_empty_source", "yes", [], "allow_empty_source", True),
        ("anonymous", "0", [], "anonymous", False),
        ("quiet", "true", [], "verbosity", -1),
        ("quiet", "true", ["-v"], "verbosity", -1),
        ("verbose", "0", [], "verbosity", 0),
        ("verbose", "3", ["-v"], "verbosity", 1),
        ("verbose", "1", ["-vvv"], "verbosity", 3),
        ("max_delete", "4", ["--max-delete", "0"], "max_delete", 0),
        ("keep", "7", ["--keep", "0"], "keep", 0),
    ],
)
def test_boolean_and_count_env_vars(
    rec: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    env_value: str,
    args: list[str],
    field: str,
    expected: object,
) -> None:
    monkeypatch.setenv(ENV_PREFIX + name.upper(), env_value)
    assert cli.main(["once", "--source", "gs://bkt", "--dest", str(tmp_path), *args]) == 0
    assert getattr(rec.config, field) == expected


def test_defaults_when_nothing_is_set(rec: Recorder, tmp_path: Path) -> None:
    assert cli.main(["run", "--source", "gs://bkt/p", "--dest", str(tmp_path / "d")]) == 0
    expected = Config(source=Source("bkt", "p/"), dest=tmp_path / "d")
    assert rec.config == expected


def test_relative_and_home_dest_become_absolute(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cli.main(["plan", "--source", "gs://bkt", "--dest", "rel/models"]) == 0
    assert cli.main(["plan", "--source", "gs://bkt", "--dest", "~/models"]) == 0
    assert [c.dest for _, c in rec.calls] == [tmp_path / "rel/models", tmp_path / "home/models"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("512", 512),
        ("10M", 10 * 1024**2),
        ("10m", 10 * 1024**2),
        ("10MB", 10 * 1024**2),
        ("10MiB", 10 * 1024**2),
        ("1.5G", 3 * 1024**3 // 2),
        ("2T", 2 * 1024**4),
        ("1K", 1024),
        (" 64G ", 64 * 1024**3),
        ("100B", 100),
        ("10Mi", 10 * 1024**2),
        ("1Gi", 1024**3),
        ("500k", 500 * 1024),
    ],
)
def test_sizes_parse(rec: Recorder, tmp_path: Path, text: str, expected: int) -> None:
    base = ["once", "--source", "gs://bkt", "--dest", str(tmp_path)]
    assert cli.main([*base, "--min-free-space", text]) == 0
    assert rec.config.min_free_space == expected


@pytest.mark.parametrize("text", ["abc", "", "M", "10X", "1..5G", "nan"])
def test_bad_sizes_are_usage_errors(
    rec: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    code = cli.main(
        ["once", "--source", "gs://bkt", "--dest", str(tmp_path), "--max-version-size", text]
    )
    assert code == 2
    err = one_line_error(capsys)
    assert "--max-version-size" in err
    assert rec.calls == []


def test_infinite_size_is_a_usage_error(rec: Recorder, tmp_path: Path) -> None:
    code = cli.main(
        ["once", "--source", "gs://bkt", "--dest", str(tmp_path), "--max-version-size", "inf"]
    )
    assert code == 2


@pytest.mark.parametrize(
    ("option", "text", "field", "seconds"),
    [
        ("interval", "5m", "interval", 300.0),
        ("interval", "0.3", "interval", 0.3),
        ("stuck_after", "1h30m", "stuck_after", 5400.0),
        ("request_timeout", "500ms", "request_timeout", 0.5),
        ("retry_deadline", "2m", "retry_deadline", 120.0),
        ("lock_timeout", "0", "lock_timeout", 0.0),
        ("hook_timeout", "90s", "hook_timeout", 90.0),
        ("server_timeout", "1m30s", "server_timeout", 90.0),
        ("settle", "1d", "settle", 86400.0),
    ],
)
@pytest.mark.parametrize("via", ["flag", "env"])
def test_durations_take_units_from_flags_and_variables(
    rec: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    option: str,
    text: str,
    field: str,
    seconds: float,
    via: str,
) -> None:
    argv = ["run", "--source", "gs://bkt", "--dest", str(tmp_path)]
    if via == "flag":
        argv += ["--" + option.replace("_", "-"), text]
    else:
        monkeypatch.setenv(ENV_PREFIX + option.upper(), text)
    assert cli.main(argv) == 0
    assert getattr(rec.config, field) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--interval", "5x"], "not a duration: '5x' (seconds, or 500ms, 90s, 5m, 1h30m, 2d)"),
        (["--interval", "1e300"], "--interval must be more than 0 and at most 7d, got 1e+300"),
        (["--request-timeout", "inf"], "--request-timeout must be more than 0 and at most 7d"),
        (["--lock-timeout", "-1"], "--lock-timeout must be within 0..7d (0 = no wait), got -1"),
        (["--bwlimit", "1e300"], "--bwlimit must be within 1K..1P, got 1e+300"),
        (["--bwlimit", "10Q"], "not a size: '10Q'"),
        (["--workers", "100000000"], "--workers must be within 1..1024, got 100000000"),
    ],
)
def test_out_of_range_values_name_the_option_and_its_range(
    rec: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], says: str
) -> None:
    assert cli.main(["run", "--source", "gs://bkt", "--dest", str(tmp_path), *argv]) == 2
    line = one_line_error(capsys)
    assert argv[0] in line
    assert says in line
    assert rec.calls == []


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("gcs-model-sync: error: ")
    return lines[0]


@pytest.mark.parametrize("command", ["once", "plan", "status", "run"])
@pytest.mark.parametrize("source", ["s3://bkt/models", "bkt/models", "/data/models", "gs://"])
def test_bad_source_is_one_line_and_exit_2(
    rec: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, source: str
) -> None:
    assert cli.main([command, "--source", source, "--dest", str(tmp_path)]) == 2
    assert "--source" in one_line_error(capsys)
    assert rec.calls == []


def test_bad_source_from_env_is_one_line_and_exit_2(
    rec: Recorder,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("GCS_MODEL_SYNC_SOURCE", "s3://elsewhere")
    monkeypatch.setenv("GCS_MODEL_SYNC_DEST", str(tmp_path))
    assert cli.main(["once"]) == 2
    assert "s3://elsewhere" in one_line_error(capsys)


@pytest.mark.parametrize("command", ["plan", "once"])
def test_bad_source_stops_the_real_command_before_connecting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """No recorder here: the real commands would connect, the Config error comes first."""
    assert cli.main([command, "--source", "s3://x", "--dest", str(tmp_path / "d")]) == 2
    one_line_error(capsys)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["once", "--dest", "/tmp/x"], "--source"),
        (["once", "--source", "gs://bkt"], "--dest"),
        (["once", "--source", "gs://bkt", "--dest", "/tmp/x", "--bogus"], "--bogus"),
        (["once", "--source", "gs://bkt", "--dest", "/tmp/x", "--keep", "many"], "--keep"),
        (["once", "--source", "gs://bkt", "--dest", "/tmp/x", "--keep", "-1"], "--keep"),
        (["once", "--source", "gs://bkt", "--dest", "/tmp/x", "--log-format", "xml"], "xml"),
        (["plan", "--source", "gs://bkt", "--dest", "/tmp/x", "--workers", "0"], "--workers"),
        (["status", "--source", "gs://bkt", "--dest", "/tmp/x", "--lock-timeout", "1"], "--lock"),
        (["once", "--source", "gs://bkt", "--dest", "/tmp/x", "--workers", "0"], "--workers"),
        (["plan", "--source", "gs://bkt", "--dest", "/tmp/x", "--on-change", "x"], "--on-change"),
        (["run", "--source", "gs://bkt", "--dest", "/tmp/x", "--jitter", "1.5"], "--jitter"),
        (["nonsense"], "nonsense"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    rec: Recorder, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert cli.main(argv) == 2
    assert says in one_line_error(capsys)
    assert rec.calls == []


def test_dest_that_is_a_file_is_exit_2(
    rec: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("x")
    assert cli.main(["once", "--source", "gs://bkt", "--dest", str(tmp_path / "f")]) == 2
    assert ": not a directory (" in one_line_error(capsys)


def _raise(exc: BaseException) -> Callable[[], int]:
    def result() -> int:
        raise exc

    return result


@pytest.mark.parametrize(
    ("result", "code", "says"),
    [
        (lambda: 0, 0, None),
        (lambda: 1, 1, None),
        (lambda: 3, 3, None),
        (_raise(ConfigError("--keep must be 0 (all) or a positive number")), 2, "--keep must"),
        (_raise(LockBusy("another run holds /x")), 1, "another run"),
        (_raise(SyncError("it broke")), 1, "it broke"),
        (_raise(Interrupted(15)), 143, "signal 15"),
    ],
)
def test_command_outcomes_become_exit_codes(
    rec: Recorder,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    result: Callable[[], int],
    code: int,
    says: str | None,
) -> None:
    rec.result = result
    assert cli.main(["once", "--source", "gs://bkt", "--dest", str(tmp_path)]) == code
    if says:
        assert says in one_line_error(capsys)
    else:
        assert capsys.readouterr().err == ""


def help_text(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    return " ".join(out.split())  # undo the wrapping


@pytest.mark.parametrize("argv", [["--help"], ["once", "--help"]])
def test_help_lists_exit_codes(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    text = help_text(capsys, argv)
    assert "Exit codes: 0 the destination mirrors the source" in text
    for piece in ("1 something failed", "2 usage or configuration error", "3 a safety guard"):
        assert piece in text
    assert "128+N" in text


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (
            "plan",
            ["0 nothing would fail", "1 the listing failed", "3 a safety guard would", "128+N"],
        ),
        ("status", ["0 the report was printed", "1 the listing failed", "128+N"]),
        ("run", ["0 stopped by SIGTERM or SIGINT", "1 --max-failures consecutive passes failed"]),
    ],
)
def test_each_command_help_tells_its_own_exit_codes(
    capsys: pytest.CaptureFixture[str], command: str, says: list[str]
) -> None:
    text = help_text(capsys, [command, "--help"])
    assert "2 usage or configuration error" in text
    for piece in says:
        assert piece in text
    if command == "run":
        assert "128+N" not in text  # run exits 0 on SIGTERM/SIGINT


WRITE_ONLY = {"workers", "lock_timeout", "max_version_size", "min_free_space"}
HOOK_AND_LOOP = {"on_change", "hook_timeout", "tfs_config", "interval", "jitter", "max_failures"}


@pytest.mark.parametrize("command", ["plan", "status"])
def test_read_only_commands_offer_only_the_options_that_matter_to_reading(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    declared = set(options_of(command))
    assert not declared & (WRITE_ONLY | HOOK_AND_LOOP)
    assert {"source", "dest", "keep", "max_delete", "retry_attempts", "settle"} <= declared
    text = help_text(capsys, [command, "--help"])
    assert "created if missing" not in text
    assert "--dest <path> Local model base path; only read, never created." in text


@pytest.mark.parametrize("command", ["once", "run"])
def test_writing_commands_keep_every_write_option(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert set(options_of(command)) >= WRITE_ONLY
    assert "Local model base path (created if missing)." in help_text(capsys, [command, "--help"])


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_every_env_var(capsys: pytest.CaptureFixture[str], command: str) -> None:
    text = help_text(capsys, [command, "--help"])
    for name, (envvar, flags) in options_of(command).items():
        assert envvar is not None
        assert envvar in text, name
        assert flags[0] in text


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, ["--help"])
    for command in COMMANDS:
        assert f" {command} " in text


@pytest.mark.parametrize("argv", [["-h"], ["once", "-h"], ["run", "-h"]])
def test_h_is_help(rec: Recorder, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert "Usage: gcs-model-sync" in help_text(capsys, argv)
    assert rec.calls == []


def test_bare_command_prints_the_help_without_an_error(
    rec: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 as click's no_args_is_help does (a command is missing), the help on stderr."""
    assert cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("Usage: gcs-model-sync [OPTIONS] COMMAND")
    assert "error" not in err.lower().replace("configuration error", "")
    for command in COMMANDS:
        assert f"  {command} " in err
    assert rec.calls == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["once", "--interval", "60"], "--interval belongs to `run`"),
        (["plan", "--workers", "4"], "--workers belongs to `once` and `run`"),
        (["status", "--on-change", "x"], "--on-change belongs to `once` and `run`"),
    ],
)
def test_an_option_of_another_command_says_which_command_has_it(
    rec: Recorder, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert cli.main([argv[0], "--source", "gs://bkt", "--dest", "/tmp/x", *argv[1:]]) == 2
    line = one_line_error(capsys)
    assert f"No such option: {argv[1]}" in line
    assert says in line
    assert rec.calls == []


@pytest.mark.parametrize(("command", "sizes"), [("once", True), ("run", True), ("plan", False)])
def test_each_command_help_says_how_durations_and_sizes_are_written(
    capsys: pytest.CaptureFixture[str], command: str, sizes: bool
) -> None:
    text = help_text(capsys, [command, "--help"])
    assert "DURATION: seconds, or 500ms, 90s, 5m, 1h30m, 2d; at most 7d." in text
    assert (
        "SIZE: bytes, or 500K, 10M, 10Mi, 1.5G, 2T (powers of 1024); at most 1P." in text
    ) == sizes


def test_shell_completion_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, ["--help"])
    assert "--install-completion" in text
    assert "--show-completion" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gcs-model-sync {__version__}"


def test_help_runs_no_command(rec: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    help_text(capsys, ["once", "--help"])
    assert rec.calls == []


def test_help_imports_none_of_the_heavy_libraries() -> None:
    """The issue's W2: `--help` stays snappy. google-cloud-storage, google-auth and requests
    (about half a second here) load only when a command talks to the bucket."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from gcs_model_sync.cli.main import main\n"
        "main(['once', '--help'])\n"
        "heavy = ['google.cloud.storage', 'google.auth', 'requests', 'tenacity']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Usage:" in out.stdout
    assert out.stdout.splitlines()[-1] == ""


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_an_internal_error_is_one_line_and_exit_1_with_the_traceback_only_at_v(
    rec: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path, verbose: list[str]
) -> None:
    rec.result = _raise(KeyError("generation"))
    assert cli.main(["once", "--source", "gs://bkt", "--dest", str(tmp_path), *verbose]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("gcs-model-sync: error: internal error: KeyError: 'generation'")
    if verbose:
        assert "Traceback (most recent call last)" in err
    else:
        assert err.count("\n") == 1
        assert "-v prints the traceback" in last


@pytest.mark.parametrize("argv", [["--dest", ""], ["--dest", "  "]])
def test_an_empty_dest_is_exit_2_never_the_working_directory(
    rec: Recorder, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert cli.main(["once", "--source", "gs://bkt", *argv]) == 2
    assert "--dest is empty" in one_line_error(capsys)
    assert rec.calls == []
