"""The one configuration object every command runs from."""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from gcs_model_sync import endpoint
from gcs_model_sync.errors import ConfigError
from gcs_model_sync.formats import archives
from gcs_model_sync.logs import LogFormat
from gcs_model_sync.options import default
from gcs_model_sync.plan import pins
from gcs_model_sync.plan.patterns import Filters, Pattern, PatternError
from gcs_model_sync.servers.kinds import Kind
from gcs_model_sync.units import format_duration, format_size

# Upper bounds that keep a value inside what timers, sockets and thread pools take (a wait of
# 1e300 s overflows a C timeout; 10**8 workers is a pool that never finishes starting) and
# well beyond any sensible setting.
DURATION_MAX = 7 * 86400.0
SIZE_MAX = 1024**5
PARALLEL_MAX = 1024

NAMING_RULES = "https://cloud.google.com/storage/docs/buckets#naming"
_BUCKET_CHARS = re.compile(r"[a-z0-9._-]+")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


def bucket_name_problem(name: str) -> str | None:
    """Which of Cloud Storage's bucket naming rules `name` breaks, as the end of a sentence
    that begins "bucket names", or None when it keeps them all.

    Checked here so that a typo is a usage error naming the rule, before any request (and
    before google-cloud-storage's own check raises a bare ValueError).
    """
    if not _BUCKET_CHARS.fullmatch(name):
        return "hold only lowercase letters, digits, dashes, underscores and dots"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "start and end with a letter or a digit"
    if "." in name:
        if not 3 <= len(name) <= 222:
            return "with dots are 3 to 222 characters long"
        if any(len(part) > 63 for part in name.split(".")):
            return "with dots have at most 63 characters between dots"
    elif not 3 <= len(name) <= 63:
        return "are 3 to 63 characters long"
    if _IPV4.fullmatch(name):
        return "cannot be an IP address"
    if name.startswith("goog"):
        return 'cannot begin with "goog"'
    if "google" in name or "g00gle" in name:
        return 'cannot contain "google"'
    return None


@dataclass(frozen=True, slots=True)
class Source:
    bucket: str
    prefix: str  # "" or ends with "/"

    @classmethod
    def parse(cls, url: str) -> Source:
        if not url.strip():
            raise ConfigError("--source is empty: give gs://BUCKET[/PREFIX]")
        if not url.startswith("gs://"):
            raise ConfigError(f"--source must look like gs://BUCKET[/PREFIX], got {url!r}")
        bucket, _, prefix = url[len("gs://") :].partition("/")
        if not bucket or any(c in bucket for c in " \\\n\t"):
            raise ConfigError(f"--source has no valid bucket name: {url!r}")
        if broken := bucket_name_problem(bucket):
            raise ConfigError(f"--source {url!r}: bucket names {broken} (see {NAMING_RULES})")
        prefix = prefix.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"


def ready_marker_path(marker: str) -> str:
    """`./_SUCCESS`, `a//b/` -> `_SUCCESS`, `a/b`: the object name under V/ that --ready-marker
    waits for; a usage error for what cannot be inside a version (empty, absolute, `..`)."""
    normal = posixpath.normpath(marker) if marker.strip() else ""
    if normal in ("", ".") or normal.startswith("/") or normal.split("/")[0] == "..":
        raise ConfigError(
            f"--ready-marker must be a path inside the version folder, like _SUCCESS or "
            f"done/_SUCCESS (no leading /, no ..), got {marker!r}"
        )
    return normal


def aliases_name_ok(name: str) -> bool:
    """A name that can only be an object directly inside a model folder, never a version."""
    return (
        "/" not in name
        and name not in (".", "..")
        and not name.isdigit()
        and not archives.REGISTRY.name_re.fullmatch(name)
    )


@functools.cache
def parse_filters(include: tuple[str, ...], exclude: tuple[str, ...]) -> Filters:
    """The patterns compiled; a usage error names the option and the pattern."""
    for option, patterns in (("include", include), ("exclude", exclude)):
        for text in patterns:
            try:
                Pattern.parse(text)
            except PatternError as exc:
                raise ConfigError(f"--{option} {text!r}: {exc}") from None
    return Filters.parse(include, exclude)


def _duration_problem(option: str, value: float, *, zero: str | None = None) -> str | None:
    """The message for a duration outside (0, DURATION_MAX], or [0, ...] when `zero` says
    what 0 means; nan and inf are outside both."""
    low_ok = value >= 0 if zero is not None else value > 0
    if low_ok and value <= DURATION_MAX:
        return None
    top = format_duration(DURATION_MAX)
    if zero is not None:
        return f"--{option} must be within 0..{top} (0 = {zero}), got {value:g}"
    return f"--{option} must be more than 0 and at most {top}, got {value:g}"


def _size_problem(option: str, value: int | None, low: int) -> str | None:
    if value is None or low <= value <= SIZE_MAX:
        return None
    given = format_size(value) if 0 <= value <= 1024**6 else f"{float(value):.3g}"
    return f"--{option} must be within {format_size(low)}..{format_size(SIZE_MAX)}, got {given}"


@dataclass(frozen=True, slots=True)
class Config:
    source: Source
    dest: Path
    # Each default is the option's (options.py): one place, whether the CLI or code builds it.
    keep: int = default("keep")
    pin: tuple[str, ...] = default("pin")  # MODEL=VERSION each; `pins` reads them
    aliases: str = default("aliases")  # the object's name in each model folder; "" = none
    include: tuple[str, ...] = default("include")  # glob patterns; `filters` compiles them
    exclude: tuple[str, ...] = default("exclude")
    refuse_pickle: bool = default("refuse_pickle")
    allow_empty_source: bool = default("allow_empty_source")
    max_delete: int | None = default("max_delete")
    anonymous: bool = default("anonymous")
    project: str | None = default("project")
    endpoint: str | None = default("endpoint")  # JSON API root instead of storage.googleapis.com
    endpoint_credentials: bool = default("endpoint_credentials")  # to a non-Google --endpoint
    billing_project: str | None = default("billing_project")  # requester pays: userProject
    settle: float = default("settle")  # seconds a folder-form version's newest object must age
    ready_marker: str | None = default("ready_marker")  # folder-form versions wait for V/<this>
    log_format: LogFormat = default("log_format")  # noqa: RUF009 - an immutable value
    output: LogFormat = "text"  # `plan` and `status`: what they print on stdout
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    workers: int = default("workers")
    # Big objects: read as parallel ranges of `slice_size`, within one connection budget.
    connections: int = default("connections")
    slice_size: int = default("slice_size")
    slice_threshold: int = default("slice_threshold")
    bwlimit: int | None = default("bwlimit")  # bytes per second over every read of the process
    lock_timeout: float = default("lock_timeout")
    retry_attempts: int = default("retry_attempts")
    retry_deadline: float = default("retry_deadline")
    request_timeout: float = default("request_timeout")
    list_page_size: int = default("list_page_size")  # the API maximum: fewest list requests
    max_version_size: int = default("max_version_size")
    min_free_space: int = default("min_free_space")
    link_unchanged: bool = default("link_unchanged")  # hard-link files an installed version holds
    # sidecar (`run`) and hooks
    interval: float = default("interval")
    jitter: float = default("jitter")
    max_failures: int = default("max_failures")
    http_port: int | None = default("http_port")
    http_host: str = default("http_host")
    stuck_after: float = default("stuck_after")
    on_change: str | None = default("on_change")
    hook_timeout: float = default("hook_timeout")
    tfs_config: Path | None = default("tfs_config")  # noqa: RUF009 - None
    # Beyond the bare <model>/<version> layout: files beside the versions, a check before
    # publishing, and the model server's word before a superseded version is deleted.
    model_files: bool = default("model_files")
    verify: str | None = default("verify")
    signature_key: Path | None = default("signature_key")  # noqa: RUF009 - None
    require_signature: bool = default("require_signature")
    require_digest: bool = default("require_digest")
    server: str | None = default("server")  # the model server's HTTP root
    server_kind: str = default("server_kind")
    server_timeout: float = default("server_timeout")  # for the server to serve a new version

    @property
    def pins(self) -> dict[str, int]:
        """Model path -> the version --pin names."""
        return pins.parse(self.pin)

    @property
    def filters(self) -> Filters:
        """--include and --exclude, compiled."""
        return parse_filters(self.include, self.exclude)

    def __post_init__(self) -> None:
        pins.parse(self.pin)
        parse_filters(self.include, self.exclude)
        if self.ready_marker is not None:
            object.__setattr__(self, "ready_marker", ready_marker_path(self.ready_marker))
        durations = [
            _duration_problem("interval", self.interval),
            _duration_problem("lock-timeout", self.lock_timeout, zero="no wait"),
            _duration_problem("request-timeout", self.request_timeout),
            _duration_problem("retry-deadline", self.retry_deadline),
            _duration_problem("hook-timeout", self.hook_timeout),
            _duration_problem("stuck-after", self.stuck_after),
            _duration_problem("settle", self.settle, zero="off"),
            _duration_problem("server-timeout", self.server_timeout),
        ]
        sizes = [
            _size_problem("slice-size", self.slice_size, 1024**2),
            _size_problem("slice-threshold", self.slice_threshold, 0),
            _size_problem("bwlimit", self.bwlimit, 1024),
            _size_problem("max-version-size", self.max_version_size, 1),
            _size_problem("min-free-space", self.min_free_space, 0),
        ]
        for problem in durations + sizes:
            if problem:
                raise ConfigError(problem)
        endpoint_problem = endpoint.problem(
            self.endpoint, anonymous=self.anonymous, endpoint_credentials=self.endpoint_credentials
        )
        checks = [
            (self.keep >= 0, "--keep must be 0 (all) or a positive number"),
            (self.max_delete is None or self.max_delete >= 0, "--max-delete must be >= 0"),
            (
                1 <= self.workers <= PARALLEL_MAX,
                f"--workers must be within 1..{PARALLEL_MAX}, got {self.workers}",
            ),
            (
                1 <= self.connections <= PARALLEL_MAX,
                f"--connections must be within 1..{PARALLEL_MAX}, got {self.connections}",
            ),
            (0 <= self.jitter < 1, f"--jitter must be a fraction in [0, 1), got {self.jitter:g}"),
            (self.max_failures >= 0, "--max-failures must be >= 0 (0 = never)"),
            (self.retry_attempts >= 1, "--retry-attempts must be >= 1"),
            (1 <= self.list_page_size <= 1000, "--list-page-size must be within 1..1000"),
            (
                self.server_kind in set(Kind),
                f"--server-kind must be one of {', '.join(Kind)}, got {self.server_kind!r}",
            ),
            (endpoint_problem is None, endpoint_problem or ""),
            (
                not self.aliases or aliases_name_ok(self.aliases),
                "--aliases must be a file name inside the model folder (no '/', not a version "
                f'or archive name), or "" for none; got {self.aliases!r}',
            ),
            (
                self.signature_key is not None or not self.require_signature,
                (
                    "--require-signature needs --signature-key: the elliptic-curve public key "
                    "(PEM) that verifies each V.sig"
                ),
            ),
            (
                self.http_port is None or 0 <= self.http_port <= 65535,
                "--http-port must be within 0..65535",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if problem := dest_not_a_folder(self.dest):
            raise ConfigError(problem)


def dest_not_a_folder(dest: Path) -> str | None:
    """Why --dest can never be a folder: it, or the nearest of its parents that exists, is
    something else (a file)."""
    for place in (dest, *dest.parents):
        if place.is_dir():
            return None
        if place.exists() or place.is_symlink():
            what = "a file" if place.is_file() else "not a directory"
            return f"--dest {dest}: not a directory ({place} is {what})"
    return None
