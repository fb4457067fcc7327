"""The command line: options (each with a GCS_MODEL_SYNC_* variable) -> one Config -> a command.

Commands share most options; they are declared once here and stitched into each command's
signature, so typer sees ordinary functions and `--help` lists every option with its variable.
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from gcs_model_sync import __version__, units
from gcs_model_sync.config import (
    DEFAULT_CONNECTIONS,
    DEFAULT_WORKERS,
    DURATION_MAX,
    ENV_PREFIX,
    SIZE_MAX,
    Config,
    Source,
)
from gcs_model_sync.errors import EXIT_FAILED, EXIT_USAGE, ConfigError, exit_now

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


def _opt(*names: str, env: str, help: str, **kw: Any) -> Any:
    return typer.Option(*names, envvar=ENV_PREFIX + env, help=help, show_envvar=True, **kw)


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


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


SIZE = {"parser": parse_size, "metavar": "SIZE"}
DURATION = {"parser": parse_duration, "metavar": "DURATION"}


def _dest(help: str) -> inspect.Parameter:
    """--dest: one declaration, its help told apart for commands that write and that read."""
    # str, not Path: Path("") is ".", and an empty --dest must not mean the cwd.
    return _param(
        "dest", Annotated[str, _opt("--dest", env="DEST", help=help, metavar="<path>")], ...
    )


SOURCE = _param(
    "source",
    Annotated[str, _opt("--source", env="SOURCE", help="gs://BUCKET[/PREFIX] to mirror.")],
    ...,
)
# Options that matter to every command, `plan` and `status` included (they list and plan).
READ = [
    _param(
        "keep",
        Annotated[
            int, _opt("--keep", env="KEEP", help="Keep the newest N versions per model; 0 = all.")
        ],
        0,
    ),
    _param(
        "allow_empty_source",
        Annotated[
            bool,
            _opt(
                "--allow-empty-source",
                env="ALLOW_EMPTY_SOURCE",
                help="Accept a listing with no versions: it may delete every managed version, "
                "and counts as success when nothing is installed.",
            ),
        ],
        False,
    ),
    _param(
        "max_delete",
        Annotated[
            int | None,
            _opt(
                "--max-delete",
                env="MAX_DELETE",
                help="Refuse a pass that would delete more than N versions.",
            ),
        ],
        None,
    ),
    _param(
        "anonymous",
        Annotated[
            bool, _opt("--anonymous", env="ANONYMOUS", help="No credentials (public buckets).")
        ],
        False,
    ),
    _param(
        "project",
        Annotated[
            str | None,
            _opt(
                "--project",
                env="PROJECT",
                help="Google Cloud project (default: from the credentials).",
            ),
        ],
        None,
    ),
    _param(
        "endpoint",
        Annotated[
            str | None,
            _opt(
                "--endpoint",
                env="ENDPOINT",
                help="JSON API root to use instead of https://storage.googleapis.com "
                "(Private Service Connect, a proxy). Google credentials go only to "
                "https://*.googleapis.com, elsewhere only with --endpoint-credentials; "
                "http://user:password@host is sent as basic auth.",
            ),
        ],
        None,
    ),
    _param(
        "endpoint_credentials",
        Annotated[
            bool,
            _opt(
                "--endpoint-credentials",
                env="ENDPOINT_CREDENTIALS",
                help="Send our Google credentials (an access token) to an --endpoint that is "
                "not https://*.googleapis.com: a proxy or server you trust with them.",
            ),
        ],
        False,
    ),
    _param(
        "billing_project",
        Annotated[
            str | None,
            _opt(
                "--billing-project",
                env="BILLING_PROJECT",
                help="Project billed for requester-pays buckets (sent as userProject).",
            ),
        ],
        None,
    ),
    _param(
        "settle",
        Annotated[
            float,
            _opt(
                "--settle",
                env="SETTLE",
                help="A folder-form version is installed only once its newest object is this "
                "old on the bucket's clock; 0 = off.",
                **DURATION,
            ),
        ],
        "1m",
    ),
    _param(
        "ready_marker",
        Annotated[
            str | None,
            _opt(
                "--ready-marker",
                env="READY_MARKER",
                help="A folder-form version is installed only once V/NAME exists and no "
                "other object of it is newer (e.g. _SUCCESS).",
            ),
        ],
        None,
    ),
    _param(
        "model_files",
        Annotated[
            bool,
            _opt(
                "--model-files",
                env="MODEL_FILES",
                help="Also mirror the files directly inside each model folder (Triton's "
                "config.pbtxt, labels), after the model's versions.",
            ),
        ],
        False,
    ),
    _param(
        "server",
        Annotated[
            str | None,
            _opt(
                "--server",
                env="SERVER",
                help="The model server's HTTP root (http://localhost:8501): confirm each new "
                "version is served, and delete a superseded one only once a newer is.",
            ),
        ],
        None,
    ),
    _param(
        "server_kind",
        Annotated[
            str,
            _opt(
                "--server-kind",
                env="SERVER_KIND",
                help="tfserving (REST /v1/models), kserve-v2 (Triton, OpenVINO, KServe "
                "runtimes), or triton-explicit (also asks Triton to load each changed model).",
            ),
        ],
        "tfserving",
    ),
    _param(
        "log_format",
        Annotated[
            str, _opt("--log-format", env="LOG_FORMAT", help="text or json (one object per line).")
        ],
        "text",
    ),
    _param(
        "verbose",
        Annotated[
            int,
            _opt("--verbose", "-v", env="VERBOSE", count=True, help="More detail (repeatable)."),
        ],
        0,
    ),
    _param(
        "quiet",
        Annotated[bool, _opt("--quiet", "-q", env="QUIET", help="Warnings and errors only.")],
        False,
    ),
    _param(
        "retry_attempts",
        Annotated[
            int,
            _opt(
                "--retry-attempts", env="RETRY_ATTEMPTS", help="Tries per request before giving up."
            ),
        ],
        6,
    ),
    _param(
        "retry_deadline",
        Annotated[
            float,
            _opt(
                "--retry-deadline",
                env="RETRY_DEADLINE",
                help="Time spent retrying one request before giving up.",
                **DURATION,
            ),
        ],
        "2m",
    ),
    _param(
        "request_timeout",
        Annotated[
            float,
            _opt(
                "--request-timeout",
                env="REQUEST_TIMEOUT",
                help="Time a request may stall before it is retried.",
                **DURATION,
            ),
        ],
        "1m",
    ),
    _param(
        "list_page_size",
        Annotated[
            int,
            _opt(
                "--list-page-size",
                env="LIST_PAGE_SIZE",
                help="Objects per list request (max 1000).",
            ),
        ],
        1000,
    ),
]
# Options that matter only to commands that write to --dest (`once`, `run`).
WRITE = [
    _param(
        "workers",
        Annotated[int, _opt("--workers", env="WORKERS", help="Versions transferred at once.")],
        DEFAULT_WORKERS,
    ),
    _param(
        "connections",
        Annotated[
            int,
            _opt(
                "--connections",
                env="CONNECTIONS",
                help="Downloads open at once, over all workers and slices.",
            ),
        ],
        DEFAULT_CONNECTIONS,
    ),
    _param(
        "slice_size",
        Annotated[
            int,
            _opt(
                "--slice-size",
                env="SLICE_SIZE",
                help="Objects of --slice-threshold or more are read as ranges of this size, "
                "in parallel and resumable across passes.",
                **SIZE,
            ),
        ],
        "16M",
    ),
    _param(
        "slice_threshold",
        Annotated[
            int,
            _opt(
                "--slice-threshold",
                env="SLICE_THRESHOLD",
                help="Objects smaller than this are read in one stream (0: slice every object "
                "of more than one slice).",
                **SIZE,
            ),
        ],
        "32M",
    ),
    _param(
        "bwlimit",
        Annotated[
            int | None,
            _opt(
                "--bwlimit",
                env="BWLIMIT",
                help="Cap on the total download rate, bytes per second (10M = 10Mi: 10 MiB/s).",
                **SIZE,
            ),
        ],
        None,
    ),
    _param(
        "lock_timeout",
        Annotated[
            float,
            _opt(
                "--lock-timeout",
                env="LOCK_TIMEOUT",
                help="Time to wait for another run on the same --dest; 0 = no wait.",
                **DURATION,
            ),
        ],
        "10s",
    ),
    _param(
        "max_version_size",
        Annotated[
            int,
            _opt(
                "--max-version-size",
                env="MAX_VERSION_SIZE",
                help="Reject a version that extracts to more than this.",
                **SIZE,
            ),
        ],
        "64G",
    ),
    _param(
        "min_free_space",
        Annotated[
            int,
            _opt(
                "--min-free-space",
                env="MIN_FREE_SPACE",
                help="Leave at least this much free on --dest; a version that would not fit fails.",
                **SIZE,
            ),
        ],
        "0",
    ),
]
READS = [SOURCE, _dest("Local model base path; only read, never created."), *READ]
WRITES = [SOURCE, _dest("Local model base path (created if missing)."), *READ, *WRITE]
HOOKS = [
    _param(
        "on_change",
        Annotated[
            str | None,
            _opt(
                "--on-change",
                env="ON_CHANGE",
                help="Command run after a pass that published or pruned (shlex-split, no shell).",
            ),
        ],
        None,
    ),
    _param(
        "hook_timeout",
        Annotated[
            float,
            _opt(
                "--hook-timeout",
                env="HOOK_TIMEOUT",
                help="Time the --on-change and --verify commands may run.",
                **DURATION,
            ),
        ],
        "1m",
    ),
    _param(
        "verify",
        Annotated[
            str | None,
            _opt(
                "--verify",
                env="VERIFY",
                help="Command run in each staged version before it is published (shlex-split, "
                "no shell); non-zero: not published, not tried again until its object changes.",
            ),
        ],
        None,
    ),
    _param(
        "server_timeout",
        Annotated[
            float,
            _opt(
                "--server-timeout",
                env="SERVER_TIMEOUT",
                help="Time to wait for --server to serve a newly published version.",
                **DURATION,
            ),
        ],
        "2m",
    ),
    _param(
        "tfs_config",
        Annotated[
            Path | None,
            _opt(
                "--tfs-config",
                env="TFS_CONFIG",
                help="Write a TF Serving model_config_list file naming every model under --dest.",
            ),
        ],
        None,
    ),
]
LOOP = [
    _param(
        "interval",
        Annotated[
            float,
            _opt("--interval", env="INTERVAL", help="Time between pass starts.", **DURATION),
        ],
        "1m",
    ),
    _param(
        "jitter",
        Annotated[
            float,
            _opt(
                "--jitter",
                env="JITTER",
                help="Random fraction of the interval added to each wait, to spread a fleet.",
            ),
        ],
        0.0,
    ),
    _param(
        "max_failures",
        Annotated[
            int,
            _opt(
                "--max-failures",
                env="MAX_FAILURES",
                help="Exit after N consecutive failed passes; 0 = never.",
            ),
        ],
        0,
    ),
    _param(
        "http_port",
        Annotated[
            int | None,
            _opt(
                "--http-port",
                env="HTTP_PORT",
                help="Serve /healthz, /readyz and /metrics on this port.",
            ),
        ],
        None,
    ),
    _param(
        "http_host",
        Annotated[str, _opt("--http-host", env="HTTP_HOST", help="Address for --http-port.")],
        "0.0.0.0",  # noqa: S104 - probes reach the pod IP
    ),
    _param(
        "stuck_after",
        Annotated[
            float,
            _opt(
                "--stuck-after",
                env="STUCK_AFTER",
                help="/healthz fails while a pass runs longer than this.",
                **DURATION,
            ),
        ],
        "1h",
    ),
]


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
    fields = dict(opts)
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


def _command(
    name: str, params: list[inspect.Parameter], run: Callable[[Config], int], help: str
) -> None:
    def handler(**opts: Any) -> None:
        raise typer.Exit(run(build_config(opts)))

    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__name__ = name
    app.command(name, help=f"{help}\n\n{_units_help(params)}\n\n{EXIT_CODES[name]}")(handler)


def _units_help(params: list[inspect.Parameter]) -> str:
    """How the DURATION and SIZE values of this command's options are written."""
    lines = [f"DURATION: {units.DURATION_SYNTAX}; at most {units.format_duration(DURATION_MAX)}."]
    metadata = [m for p in params for m in getattr(p.annotation, "__metadata__", ())]
    if any(getattr(m, "parser", None) is parse_size for m in metadata):
        lines.append(f"SIZE: {units.SIZE_SYNTAX}; at most {units.format_size(SIZE_MAX)}.")
    return " ".join(lines)


def _lazy(attr: str) -> Callable[[Config], int]:
    def run(config: Config) -> int:
        from gcs_model_sync import commands

        fn: Callable[[Config], int] = getattr(commands, attr)
        return fn(config)

    return run


_command("once", WRITES + HOOKS, _lazy("once"), "Run one pass: make --dest mirror --source.")
# `plan` and `status` print a report on stdout: text for people, or one JSON document.
OUTPUT = _param(
    "output",
    Annotated[
        str | None,
        _opt(
            "--output",
            env="OUTPUT",
            help="text or json (one document on stdout); default: json with --log-format json.",
        ),
    ],
    None,
)
_command(
    "plan", [*READS, OUTPUT], _lazy("plan"), "Show what `once` would do; change nothing on disk."
)
_command(
    "status",
    [*READS, OUTPUT],
    _lazy("status"),
    "Per model: bucket versions, local versions, in sync or not.",
)
_command(
    "run",
    WRITES + HOOKS + LOOP,
    _lazy("run"),
    "Sidecar: a pass every --interval, with health, metrics and hooks.",
)


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


def _click_error() -> type[Exception]:
    """Typer 0.29 vendors click as typer._click; its usage errors derive from this."""
    from typer._click.exceptions import ClickException

    return ClickException


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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every expected error becomes one line on stderr and an exit code."""
    from typer._click.exceptions import NoArgsIsHelpError

    from gcs_model_sync.errors import SyncError
    from gcs_model_sync.redaction import redact

    click_error = _click_error()
    try:
        return int(app(args=argv, prog_name="gcs-model-sync", standalone_mode=False) or 0)
    except NoArgsIsHelpError as exc:  # bare `gcs-model-sync`: the help, as click gives it
        print(exc.format_message(), file=sys.stderr)
        return EXIT_USAGE
    except click_error as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx else ""
        message = redact(exc.format_message())  # type: ignore[attr-defined]
        print(f"gcs-model-sync: error: {message}{_elsewhere(exc)}{hint}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    except typer.Abort:
        return 130
    except SyncError as exc:
        print(f"gcs-model-sync: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the file system refused something we did not foresee
        where = f": {exc.filename}" if exc.filename else ""
        print(f"gcs-model-sync: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line; the traceback only at -v
        if _seen["verbosity"] >= 1:
            traceback.print_exc(file=sys.stderr)
        text = redact((str(exc).strip().splitlines() or [""])[0][:300])
        more = "" if _seen["verbosity"] >= 1 else "; -v prints the traceback"
        print(
            f"gcs-model-sync: error: internal error: {type(exc).__name__}: {text} "
            f"(a bug, please report it{more})",
            file=sys.stderr,
        )
        return EXIT_FAILED


def run() -> NoReturn:
    """The console script and `python -m gcs_model_sync`: main(), then exit_now()."""
    exit_now(main())
