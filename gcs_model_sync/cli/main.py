"""The command line: options (each with a GCS_MODEL_SYNC_* variable) -> one Config -> a command.

The options are declared once, in options.py; each command's signature is built from the rows
that name it, so typer sees ordinary functions and `--help` lists every option with its variable.
"""

from __future__ import annotations

import inspect
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from gcs_model_sync import __version__, options, units
from gcs_model_sync.cli import configfile
from gcs_model_sync.config import DURATION_MAX, SIZE_MAX, Config, Source
from gcs_model_sync.errors import (
    ConfigError,
    Interrupted,
    SyncError,
    exit_code,
    exit_now,
)
from gcs_model_sync.options import Option, Unit
from gcs_model_sync.sources import Sources

EXIT_CODES_HELP = (
    "Exit codes: 0 the destination mirrors the source (also when nothing changed); "
    "1 something failed (what could be synced was synced); 2 usage or configuration error; "
    "3 a safety guard refused to delete (nothing was deleted); 128+N stopped by signal N."
)
EXIT_CODES = {
    "once": EXIT_CODES_HELP,
    "plan": "Exit codes: 0 nothing would fail; 1 the listing failed or a version would be "
    "rejected; 2 usage or configuration error; 3 a safety guard would refuse to delete; "
    "128+N stopped by signal N.",
    "status": "Exit codes: 0 the report was printed (in sync or not); 1 the listing failed; "
    "2 usage or configuration error; 3 a safety guard would refuse to delete (as `plan`); "
    "128+N stopped by signal N.",
    "run": "Exit codes: 0 stopped by SIGTERM or SIGINT (the pass in progress stops at a safe "
    "point); 1 --max-failures consecutive passes failed; 2 usage or configuration error. "
    "A failed pass never ends the loop otherwise.",
}
# In the order `--help` lists them.
COMMANDS = {
    "once": "Run one pass: make --dest mirror --source.",
    "plan": "Show what `once` would do; change nothing on disk.",
    "status": "Per model: bucket versions, local versions, in sync or not.",
    "run": "Sidecar: a pass every --interval, with health, metrics and hooks.",
}

app = typer.Typer(
    name="gcs-model-sync",
    help="Mirror a gs:// prefix of model versions into a local model base path, atomically.\n\n"
    + EXIT_CODES_HELP.removesuffix(".")
    + " (`once`; `run` exits 0 on SIGTERM/SIGINT: see each command's --help).",
    add_completion=True,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def parse_size(text: str) -> int:
    """Bytes, or a number with K/M/G/T/P (powers of 1024: 10M = 10Mi = 10 MiB)."""
    try:
        return units.parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_duration(text: str) -> float:
    """Seconds, or 500ms, 90s, 5m, 1h30m, 2d."""
    try:
        return units.parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


PARSERS: dict[Unit, dict[str, Any]] = {
    Unit.PLAIN: {},
    Unit.SIZE: {"parser": parse_size, "metavar": "SIZE"},
    Unit.DURATION: {"parser": parse_duration, "metavar": "DURATION"},
}


def parameter(option: Option) -> inspect.Parameter:
    """One row of the table as typer reads a parameter: its annotation carries the option."""
    kw = dict(PARSERS[option.unit])
    if option.metavar:
        kw["metavar"] = option.metavar
    if option.count:
        kw["count"] = True
    flag = option.flag
    if option.type is bool and option.default is True:  # on by default: it needs an off switch
        flag += f"/--no-{flag[2:]}"
    names = (flag, option.short) if option.short else (flag,)
    # Required, but a --config file may give it: build_config says when none did.
    needed = option.default is options.REQUIRED
    text = f"{option.help} Required (--config may give it)." if needed else option.help
    info = typer.Option(*names, envvar=option.envvar, help=text, show_envvar=True, **kw)
    annotation: Any = Annotated[option.type | None if needed else option.type, info]
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None if needed else option.default,
        annotation=annotation,
    )


_MANY = {o.name: o.many for o in options.OPTIONS}
_seen: dict[str, int] = {"verbosity": 0}  # for main()'s last resort, before a Config exists


def build_config(opts: dict[str, Any]) -> Config:
    """The only place options become a Config."""
    log_format = opts.pop("log_format")
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, got {log_format!r}")
    output = opts.pop("output", None) or ("json" if log_format == "json" else "text")
    if output not in ("text", "json"):
        raise ConfigError(f"--output must be text or json, got {output!r}")
    verbose, quiet = opts.pop("verbose"), opts.pop("quiet")
    _seen["verbosity"] = -1 if quiet else verbose
    fields: dict[str, Any] = {
        name: tuple(value or ()) if _MANY.get(name) else value for name, value in opts.items()
    }
    fields.pop("config", None)
    for needed in ("source", "dest"):
        if fields[needed] is None:
            raise ConfigError(f"Missing option '--{needed}' (or a --config file giving it)")
    source = Source.parse(fields.pop("source"))
    dest = str(fields.pop("dest"))
    if not dest.strip():
        raise ConfigError("--dest is empty: give the local model base path, e.g. --dest /models")
    return Config(
        source=source,
        dest=Path(dest).expanduser().absolute(),
        log_format=log_format,
        output="json" if output == "json" else "text",
        verbosity=-1 if quiet else verbose,
        **fields,
    )


def _units_help(taken: list[Option]) -> str:
    """How the DURATION and SIZE values of this command's options are written."""
    lines = [f"DURATION: {units.DURATION_SYNTAX}; at most {units.format_duration(DURATION_MAX)}."]
    if any(o.unit is Unit.SIZE for o in taken):
        lines.append(f"SIZE: {units.SIZE_SYNTAX}; at most {units.format_size(SIZE_MAX)}.")
    return " ".join(lines)


def _lazy(name: str) -> Callable[[Sources], int]:
    """commands.<name>, imported only when the command runs: `--help` loads none of it."""

    def run(sources: Sources) -> int:
        from gcs_model_sync.cli import commands

        fn: Callable[[Sources], int] = getattr(commands, name)
        return fn(sources)

    return run


def _command(name: str, summary: str) -> None:
    taken = options.of(name)
    run = _lazy(name)

    def handler(ctx: typer.Context, **opts: Any) -> None:
        raise typer.Exit(run(configfile.sources(opts, ctx, build_config)))

    context = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    signature = [context, *(parameter(o) for o in taken)]
    handler.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    handler.__name__ = name
    app.command(name, help=f"{summary}\n\n{_units_help(taken)}\n\n{EXIT_CODES[name]}")(handler)


for _name, _summary in COMMANDS.items():
    _command(_name, _summary)


def _version(value: bool) -> None:
    if value:
        print(f"gcs-model-sync {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Mirror a gs:// prefix of model versions into a local model base path."""


def _elsewhere(exc: Exception) -> str:
    """For an option this command does not have: which commands do (`once --interval`)."""
    from typer._click.exceptions import NoSuchOption

    ctx = getattr(exc, "ctx", None)
    if not isinstance(exc, NoSuchOption) or ctx is None or ctx.parent is None:
        return ""
    group = ctx.parent.command
    owners = [
        f"`{name}`"
        for name in group.list_commands(ctx.parent)
        if (cmd := group.get_command(ctx.parent, name))
        and any(exc.option_name in p.opts for p in cmd.params)
    ]
    if not owners:
        return ""
    return f"; {exc.option_name} belongs to {' and '.join(owners)}"


def _usage_error(exc: Exception) -> SyncError:
    """click's error as ours, with the hint; typer 0.29 vendors click as typer._click."""
    from typer._click.exceptions import UsageError

    from gcs_model_sync.redaction import redact

    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx else ""
    message = f"{redact(exc.format_message())}{_elsewhere(exc)}{hint}"  # type: ignore[attr-defined]
    return ConfigError(message) if isinstance(exc, UsageError) else SyncError(message)


def _say(exc: BaseException) -> None:
    """The one line on stderr for an error that ended the command."""
    from gcs_model_sync.redaction import redact

    if isinstance(exc, SyncError):
        text = redact(str(exc))
    elif isinstance(exc, OSError):  # the file system refused something we did not foresee
        text = f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    else:  # a bug: still one line; the traceback only at -v
        if _seen["verbosity"] >= 1:
            traceback.print_exception(exc, file=sys.stderr)
        first = redact((str(exc).strip().splitlines() or [""])[0][:300])
        more = "" if _seen["verbosity"] >= 1 else "; -v prints the traceback"
        text = f"internal error: {type(exc).__name__}: {first} (a bug, please report it{more})"
    print(f"gcs-model-sync: error: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every expected error becomes one line on stderr and an exit code."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    error: BaseException
    try:
        return int(app(args=argv, prog_name="gcs-model-sync", standalone_mode=False) or 0)
    except NoArgsIsHelpError as exc:  # bare `gcs-model-sync`: the help, as click gives it
        print(exc.format_message(), file=sys.stderr)
        return exit_code(ConfigError("no command"))
    except ClickException as exc:
        error = _usage_error(exc)
    except typer.Abort:  # Ctrl-C while click had control
        return exit_code(Interrupted(signal.SIGINT))
    except Exception as exc:
        error = exc
    _say(error)
    return exit_code(error)


def run() -> NoReturn:
    """The console script and `python -m gcs_model_sync`: main(), then exit_now()."""
    exit_now(main())
