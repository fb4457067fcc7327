"""A fake-gcs-server preloaded from a directory (`-data`), with its access log parsed into counts.

At `-log-level info` the server logs one Apache-style line per request, written when the
request completes. Nothing else talks to the emulator while a tool runs, so the lines between
two log offsets are exactly that tool's requests: counting them costs nothing, unlike a proxy.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple

from tests.support.emulator import binary_path, free_port

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


class BenchEmulator:
    """fake-gcs-server loading every `data_dir/BUCKET/...` file as an object at start-up."""

    def __init__(self, workdir: Path, data_dir: Path, backend: Backend = "filesystem") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = backend
        self.log_path = workdir / "fake-gcs-server.log"
        self._root = workdir / "emulator-root"
        self._data_dir = data_dir
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> BenchEmulator:
        args = [
            str(binary_path()),
            "-scheme", "http",
            "-backend", self.backend,
            "-data", str(self._data_dir),
            "-log-level", "info",
            "-host", "127.0.0.1",
            "-port", str(self.port),
            "-public-host", f"127.0.0.1:{self.port}",
            "-external-url", self.url,
        ]  # fmt: skip
        if self.backend == "filesystem":
            args += ["-filesystem-root", str(self._root)]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited with {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"fake-gcs-server not ready on {self.url} after {timeout}s")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("fake-gcs-server is not running")
        return self._proc.pid

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def requests_since(self, offset: int, settle: float = 0.1) -> RequestCounts:
        """Count requests logged after `offset`; waits `settle` s for the last lines to land."""
        time.sleep(settle)
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        return count_requests(text.splitlines())
