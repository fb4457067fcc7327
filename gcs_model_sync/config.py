"""The one configuration object every command runs from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gcs_model_sync.errors import ConfigError

LogFormat = Literal["text", "json"]
ENV_PREFIX = "GCS_MODEL_SYNC_"


# Versions in flight wait on the network far more than on the CPU (extraction streams), so
# their number is not tied to cores: on a link where each connection is capped (GCS's way),
# 20 x 50 MiB zips took 5.2 s with 8 and 4.0-4.4 s with 12-16 on 2 cores. Each in flight holds
# one of the --connections; big objects take more from the same budget.
DEFAULT_WORKERS = 16
DEFAULT_CONNECTIONS = 16


# The model servers --server can ask (gcs_model_sync.server.Kind; named here so that a
# usage error needs no import of the client).
SERVER_KINDS = ("tfserving", "kserve-v2", "triton-explicit")

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


@dataclass(frozen=True, slots=True)
class Config:
    source: Source
    dest: Path
    keep: int = 0
    allow_empty_source: bool = False
    max_delete: int | None = None
    anonymous: bool = False
    project: str | None = None
    endpoint: str | None = None  # JSON API root instead of storage.googleapis.com
    billing_project: str | None = None  # requester pays: sent as userProject
    settle: float = 60.0  # seconds a folder-form version's newest object must have aged
    ready_marker: str | None = None  # folder-form versions wait for V/<this>
    log_format: LogFormat = "text"
    output: LogFormat = "text"  # `plan` and `status`: what they print on stdout
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    workers: int = DEFAULT_WORKERS
    # Big objects: read as parallel ranges of `slice_size`, within one connection budget.
    connections: int = DEFAULT_CONNECTIONS
    slice_size: int = 16 * 1024**2
    slice_threshold: int = 32 * 1024**2
    bwlimit: int | None = None  # bytes per second over every read of the process
    lock_timeout: float = 10.0
    retry_attempts: int = 6
    retry_deadline: float = 120.0
    request_timeout: float = 60.0
    list_page_size: int = 1000  # the API maximum: fewest list requests
    max_version_size: int = 64 * 1024**3
    min_free_space: int = 0
    # sidecar (`run`) and hooks
    interval: float = 60.0
    jitter: float = 0.0
    max_failures: int = 0
    http_port: int | None = None
    http_host: str = "0.0.0.0"  # noqa: S104 - Kubernetes probes reach the pod IP
    stuck_after: float = 3600.0
    on_change: str | None = None
    hook_timeout: float = 60.0
    tfs_config: Path | None = None
    # Beyond the bare <model>/<version> layout: files beside the versions, a check before
    # publishing, and the model server's word before a superseded version is deleted.
    model_files: bool = False
    verify: str | None = None
    server: str | None = None  # the model server's HTTP root
    server_kind: str = "tfserving"
    server_timeout: float = 120.0  # seconds to wait for the server to serve a new version

    def __post_init__(self) -> None:
        checks = [
            (self.keep >= 0, "--keep must be 0 (all) or a positive number"),
            (self.max_delete is None or self.max_delete >= 0, "--max-delete must be >= 0"),
            (self.workers >= 1, "--workers must be >= 1"),
            (self.connections >= 1, "--connections must be >= 1"),
            (self.slice_size >= 1024**2, "--slice-size must be at least 1M"),
            (self.bwlimit is None or self.bwlimit >= 1024, "--bwlimit must be at least 1K"),
            (self.interval > 0, "--interval must be > 0"),
            (0 <= self.jitter < 1, "--jitter must be a fraction in [0, 1)"),
            (self.max_failures >= 0, "--max-failures must be >= 0"),
            (self.retry_attempts >= 1, "--retry-attempts must be >= 1"),
            (1 <= self.list_page_size <= 1000, "--list-page-size must be within 1..1000"),
            (self.max_version_size > 0, "--max-version-size must be > 0"),
            (self.min_free_space >= 0, "--min-free-space must be >= 0"),
            (self.lock_timeout >= 0, "--lock-timeout must be >= 0"),
            (self.request_timeout > 0, "--request-timeout must be > 0"),
            (self.retry_deadline > 0, "--retry-deadline must be > 0"),
            (self.hook_timeout > 0, "--hook-timeout must be > 0"),
            (self.stuck_after > 0, "--stuck-after must be > 0"),
            (self.settle >= 0, "--settle must be >= 0 (0 = off)"),
            (self.server_timeout > 0, "--server-timeout must be > 0"),
            (
                self.server_kind in SERVER_KINDS,
                f"--server-kind must be one of {', '.join(SERVER_KINDS)}, got {self.server_kind!r}",
            ),
            (
                self.endpoint is None or self.endpoint.startswith(("http://", "https://")),
                f"--endpoint must be an http:// or https:// URL, got {self.endpoint!r}",
            ),
            (
                self.ready_marker is None
                or (
                    self.ready_marker.strip("/") != "" and ".." not in self.ready_marker.split("/")
                ),
                f"--ready-marker must name a file inside the version, got {self.ready_marker!r}",
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
