"""Every option, declared once: its flag, variable, default, help and the commands that take it.

The CLI builds its typer parameters from this table and Config takes its field defaults from
it (`default()`), so a default is written in one place. Defaults of DURATION and SIZE options
are written as users write them ("1m", "16M"): `--help` shows them so, and `default()` parses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from gcs_model_sync import units
from gcs_model_sync.servers.kinds import kinds_help

ENV_PREFIX = "GCS_MODEL_SYNC_"
REQUIRED: Final = ...  # typer's marker for an option without a default


class Unit(StrEnum):
    """How a value is written: a plain number or text, a DURATION, or a SIZE."""

    PLAIN = "plain"
    DURATION = "duration"
    SIZE = "size"


ALL = ("once", "plan", "status", "run")
WRITERS = ("once", "run")  # the commands that write to --dest
READERS = ("plan", "status")  # the commands that print a report on stdout
RUN = ("run",)


@dataclass(frozen=True, slots=True)
class Option:
    """One option: `--name-with-dashes`, GCS_MODEL_SYNC_NAME, the Config field `name`."""

    name: str
    type: Any  # the annotation typer reads: int, str | None, Path | None, ...
    default: Any
    help: str
    commands: tuple[str, ...] = ALL
    unit: Unit = Unit.PLAIN
    short: str | None = None  # -v, -q
    count: bool = False  # -vvv
    metavar: str | None = None
    # Repeatable (--pin a=1 --pin b=2): the variable holds the values split on whitespace,
    # and Config a tuple of them.
    many: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def envvar(self) -> str:
        return ENV_PREFIX + self.name.upper()


# Versions in flight wait on the network far more than on the CPU (extraction streams), so
# their number is not tied to cores: on a link where each connection is capped (GCS's way),
# 20 x 50 MiB zips took 5.2 s with 8 and 4.0-4.4 s with 12-16 on 2 cores. Each in flight holds
# one of the --connections; big objects take more from the same budget.
DEFAULT_WORKERS = 16
DEFAULT_CONNECTIONS = 16

D, S = Unit.DURATION, Unit.SIZE
# In `--help` order: every command lists the rows that name it, in this order.
OPTIONS: tuple[Option, ...] = (
    Option("source", str, REQUIRED, "gs://BUCKET[/PREFIX] to mirror."),
    # str, not Path: Path("") is ".", and an empty --dest must not mean the cwd.
    Option("dest", str, REQUIRED, "Local model base path (created if missing).", WRITERS,
           metavar="<path>"),
    Option("dest", str, REQUIRED, "Local model base path; only read, never created.", READERS,
           metavar="<path>"),
    Option("config", Path | None, None,
           "A TOML or YAML file of options, and of sources: each mirrored into its own "
           "sub-folder of --dest (flags and variables win over it).", metavar="<file>"),
    # Options that matter to every command, `plan` and `status` included (they list and plan).
    Option("keep", int, 0, "Keep the newest N versions per model; 0 = all."),
    Option("pin", list[str], (),
           "Serve exactly VERSION of MODEL (repeatable; the variable: space-separated): it is "
           "installed and kept whatever --keep says, and newer versions leave --dest.",
           metavar="MODEL=VERSION", many=True),
    Option("aliases", str, "aliases.json",
           'The object in each model folder naming versions to keep installed, e.g. '
           '{"stable": 7, "canary": 9} (TF Serving version labels with --tfs-config); '
           '"" = none.', metavar="NAME"),
    Option("include", list[str], (),
           "Mirror only paths matching PATTERN (repeatable; the variable: space-separated). "
           "rclone's globs on MODEL/VERSION/FILE paths relative to the prefix (archive members "
           "as extracted, --model-files as MODEL/FILE): * ? ** [...] {a,b}; a leading / anchors "
           "at the prefix, a trailing / names a folder. With any --include, what matches none "
           "is left out.", metavar="PATTERN", many=True),
    Option("exclude", list[str], (),
           "Leave out paths matching PATTERN (repeatable; syntax as --include; an exclude wins "
           "over an include). Left out: never downloaded nor extracted; a model or version left "
           "out whole keeps what is installed of it (never pruned).",
           metavar="PATTERN", many=True),
    Option("refuse_pickle", bool, False,
           "Reject a version holding a pickle: *.pkl, *.pickle, *.pt, *.pth, and a *.bin whose "
           "bytes are a pickle or torch's zip (OpenVINO and other raw .bin weights pass)."),
    Option("allow_empty_source", bool, False,
           "Accept a listing with no versions: it may delete every managed version, and counts "
           "as success when nothing is installed."),
    Option("max_delete", int | None, None, "Refuse a pass that would delete more than N versions."),
    Option("anonymous", bool, False, "No credentials (public buckets)."),
    Option("project", str | None, None, "Google Cloud project (default: from the credentials)."),
    Option("endpoint", str | None, None,
           "JSON API root to use instead of https://storage.googleapis.com (Private Service "
           "Connect, a proxy). Google credentials go only to https://*.googleapis.com, elsewhere "
           "only with --endpoint-credentials; http://user:password@host is sent as basic auth."),
    Option("endpoint_credentials", bool, False,
           "Send our Google credentials (an access token) to an --endpoint that is not "
           "https://*.googleapis.com: a proxy or server you trust with them."),
    Option("billing_project", str | None, None,
           "Project billed for requester-pays buckets (sent as userProject)."),
    Option("settle", float, "1m",
           "A folder-form version is installed only once its newest object is this old on the "
           "bucket's clock; 0 = off.", unit=D),
    Option("ready_marker", str | None, None,
           "A folder-form version is installed only once V/NAME exists and no other object of "
           "it is newer (e.g. _SUCCESS)."),
    Option("model_files", bool, False,
           "Also mirror the files directly inside each model folder (Triton's config.pbtxt, "
           "labels), after the model's versions."),
    # Manifests beside a version V: V.sha256 (checked when listed) and V.sig.
    Option("signature_key", Path | None, None,
           "Check each version's V.sig (a model-signing bundle of its files) with this "
           "elliptic-curve public key (PEM) before publishing; needs gcs-model-sync[signing].",
           metavar="<pem>"),
    Option("require_signature", bool, False,
           "Install only versions with a V.sig that --signature-key verifies."),
    Option("require_digest", bool, False,
           "Install only versions with a V.sha256 (sha256sum of their files) that matches."),
    Option("server", str | None, None,
           "The model server's HTTP root (http://localhost:8501): confirm each new version is "
           "served, and delete a superseded one only once a newer is."),
    Option("server_kind", str, "tfserving", kinds_help()),
    Option("log_format", str, "text", "text or json (one object per line)."),
    Option("verbose", int, 0, "More detail (repeatable).", short="-v", count=True),
    Option("quiet", bool, False, "Warnings and errors only.", short="-q"),
    Option("retry_attempts", int, 6, "Tries per request before giving up."),
    Option("retry_deadline", float, "2m", "Time spent retrying one request before giving up.",
           unit=D),
    Option("request_timeout", float, "1m", "Time a request may stall before it is retried.",
           unit=D),
    Option("list_page_size", int, 1000, "Objects per list request (max 1000)."),
    # Options that matter only to commands that write to --dest.
    Option("workers", int, DEFAULT_WORKERS, "Versions transferred at once.", WRITERS),
    Option("connections", int, DEFAULT_CONNECTIONS,
           "Downloads open at once, over all workers and slices.", WRITERS),
    Option("slice_size", int, "16M",
           "Objects of --slice-threshold or more are read as ranges of this size, in parallel "
           "and resumable across passes.", WRITERS, S),
    Option("slice_threshold", int, "32M",
           "Objects smaller than this are read in one stream (0: slice every object of more "
           "than one slice).", WRITERS, S),
    Option("bwlimit", int | None, None,
           "Cap on the total download rate, bytes per second (10M = 10Mi: 10 MiB/s).",
           WRITERS, S),
    Option("lock_timeout", float, "10s",
           "Time to wait for another run on the same --dest; 0 = no wait.", WRITERS, D),
    Option("max_version_size", int, "64G", "Reject a version that extracts to more than this.",
           WRITERS, S),
    Option("link_unchanged", bool, True,
           "A folder-form version's files that an installed version of the model holds (same "
           "size and CRC-32C, checked on disk) are hard-linked from it, not downloaded.",
           ("once", "plan", "run")),
    Option("min_free_space", int, "0",
           "Leave at least this much free on --dest; a version that would not fit fails.",
           WRITERS, S),
    # Hooks: what runs around a pass that writes.
    Option("on_change", str | None, None,
           "Command run after a pass that published or pruned (shlex-split, no shell).", WRITERS),
    Option("hook_timeout", float, "1m", "Time the --on-change and --verify commands may run.",
           WRITERS, D),
    Option("verify", str | None, None,
           "Command run in each staged version before it is published (shlex-split, no shell); "
           "non-zero: not published, not tried again until its object changes.", WRITERS),
    Option("server_timeout", float, "2m",
           "Time to wait for --server to serve a newly published version.", WRITERS, D),
    Option("tfs_config", Path | None, None,
           "Write a TF Serving model_config_list file naming every model under --dest.", WRITERS),
    # The sidecar loop.
    Option("interval", float, "1m", "Time between pass starts.", RUN, D),
    Option("jitter", float, 0.0,
           "Random fraction of the interval added to each wait, to spread a fleet.", RUN),
    Option("max_failures", int, 0, "Exit after N consecutive failed passes; 0 = never.", RUN),
    Option("http_port", int | None, None, "Serve /healthz, /readyz and /metrics on this port.",
           RUN),
    # probes reach the pod IP
    Option("http_host", str, "0.0.0.0", "Address for --http-port.", RUN),  # noqa: S104
    Option("stuck_after", float, "1h", "/healthz fails while a pass runs longer than this.",
           RUN, D),
    # `plan` and `status` print a report on stdout: text for people, or one JSON document.
    Option("output", str | None, None,
           "text or json (one document on stdout); default: json with --log-format json.",
           READERS),
)  # fmt: skip


# What one process shares, so a --config file sets it at its top level only, never per source.
PROCESS_WIDE = frozenset({
    "interval", "jitter", "max_failures", "http_port", "http_host", "stuck_after", "log_format",
    "verbose", "quiet", "output", "lock_timeout", "workers", "connections", "bwlimit",
})  # fmt: skip


def of(command: str) -> list[Option]:
    """The options `command` takes, in `--help` order."""
    return [o for o in OPTIONS if command in o.commands]


def default(name: str) -> Any:
    """An option's default as Config holds it: a DURATION in seconds, a SIZE in bytes."""
    row = next(o for o in OPTIONS if o.name == name)
    if row.default is None or row.unit is Unit.PLAIN:
        return row.default
    parse = units.parse_duration if row.unit is Unit.DURATION else units.parse_size
    return parse(row.default)
