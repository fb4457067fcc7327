"""A fake-gcs-server preloaded from a directory (`-data`), with its access log parsed into counts.

At `-log-level info` the server logs one Apache-style line per request, written when the
request completes. Nothing else talks to the emulator while a tool runs, so the lines between
two log offsets are exactly that tool's requests: counting them costs nothing, unlike a proxy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple

from tests.support.emulator import Emulator

Backend = Literal["filesystem", "memory"]

# msg="127.0.0.1 - - [22/Nov/2026:19:53:10 +0000] \"GET /storage/v1/b/bk/o?... HTTP/1.1\" 200 157
_REQUEST = re.compile(r'\\"([A-Z]+) (\S+) HTTP/[\d.]+\\" (\d{3}) ')
_LIST = re.compile(r"^/storage/v1/b/[^/]+/o/?$")
_OBJECT = re.compile(r"^/storage/v1/b/[^/]+/o/.+")


class RequestCounts(NamedTuple):
    """Requests by kind: listings, object metadata reads, object media reads, anything else."""

    list: int = 0
    metadata: int = 0
    read: int = 0
    other: int = 0
    errors: int = 0  # responses >= 400, counted in their kind as well

    @property
    def total(self) -> int:
        return self.list + self.metadata + self.read + self.other


def classify(method: str, target: str) -> str:
    """One request line → "list", "metadata", "read" or "other"."""
    path, _, query = target.partition("?")
    if method != "GET":
        return "other"
    if path.startswith("/download/") or "alt=media" in query.split("&"):
        return "read"
    if _LIST.match(path):
        return "list"
    if _OBJECT.match(path):
        return "metadata"
    if not path.startswith(("/storage/", "/upload/", "/_internal/")) and path.count("/") >= 2:
        return "read"  # XML-style GET /BUCKET/OBJECT
    return "other"


def count_requests(lines: Iterable[str]) -> RequestCounts:
    counts = {"list": 0, "metadata": 0, "read": 0, "other": 0, "errors": 0}
    for line in lines:
        match = _REQUEST.search(line)
        if not match:
            continue
        method, target, status = match.groups()
        counts[classify(method, target)] += 1
        if int(status) >= 400:
            counts["errors"] += 1
    return RequestCounts(**counts)


class BenchEmulator(Emulator):
    """fake-gcs-server loading every `data_dir/BUCKET/...` file as an object at start-up,
    logging each request (the request counts come from that log)."""

    def __init__(self, workdir: Path, data_dir: Path, backend: Backend = "filesystem") -> None:
        extra: tuple[str, ...] = ("-data", str(data_dir))
        if backend == "filesystem":
            extra += ("-filesystem-root", str(workdir / "emulator-root"))
        self.log_path = workdir / "fake-gcs-server.log"
        super().__init__(self.log_path, backend, log_level="info", extra_args=extra)
        self.backend: Backend = backend

    def start(self, timeout: float = 120.0, public_url: str | None = None) -> BenchEmulator:
        """Preloading data takes a while. `public_url`: the address clients reach it by (a
        proxy's), which the server writes into its responses' links (rclone downloads from
        `mediaLink`) and matches XML-style requests' Host header against."""
        if public_url:  # given after Emulator's own flags: the last one wins
            host = public_url.split("//", 1)[-1]
            self._extra_args += ("-public-host", host, "-external-url", public_url)
        super().start(timeout)
        return self

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("fake-gcs-server is not running")
        return int(self._proc.pid)

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def requests_since(self, offset: int, settle: float = 0.1) -> RequestCounts:
        """Count requests logged after `offset`; waits `settle` s for the last lines to land."""
        time.sleep(settle)
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        return count_requests(text.splitlines())
