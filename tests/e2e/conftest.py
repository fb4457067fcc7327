"""End-to-end fixtures: the real CLI in a subprocess against the emulator (optionally via a
fault-injecting proxy)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.support.cli import popen_cli, run_cli
from tests.support.emulator import Emulator, free_port
from tests.support.faultproxy import FaultProxy
from tests.support.gcs import Bucket

PREFIX = "models"


class Sync:
    """One scenario: a bucket prefix, a destination, and the CLI pointed at both."""

    def __init__(self, bucket: Bucket, dest: Path, endpoint: str) -> None:
        self.bucket = bucket
        self.dest = dest
        self.endpoint = endpoint
        self.source = f"gs://{bucket.name}/{PREFIX}"

    def key(self, rel: str) -> str:
        return f"{PREFIX}/{rel}"

    def args(self, command: str, *extra: str) -> list[str]:
        return [command, "--source", self.source, "--dest", str(self.dest), *extra]

    def run(
        self, command: str, *extra: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(self.args(command, *extra), self.endpoint, env=env, timeout=timeout)

    def once(
        self, *extra: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.run("once", "--retry-deadline", "20", *extra, env=env, timeout=timeout)

    def start(self, command: str, *extra: str) -> subprocess.Popen[str]:
        return popen_cli(self.args(command, *extra), self.endpoint)

    def sidecar(self, *extra: str) -> AbstractContextManager[tuple[subprocess.Popen[str], int]]:
        """`run` polling every 0.3 s with its probes on a free port; SIGTERM on the way out."""
        return sidecar(lambda probes: self.start("run", *probes, *extra))

    def version(self, rel: str) -> dict[str, bytes]:
        """The files of DEST/<rel> as {relative path: bytes}."""
        root = self.dest / rel
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    def versions(self, model: str = "") -> list[str]:
        base = self.dest / model if model else self.dest
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.name.isdigit())


@contextmanager
def sidecar(
    launch: Callable[[list[str]], subprocess.Popen[str]],
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`run`, started by `launch` with these probe options (polling every 0.3 s, its probes on a
    free port) to put before its own extra ones, which win; SIGTERM on the way out."""
    port = free_port()
    proc = launch(["--interval", "0.3", "--http-port", str(port), "--http-host", "127.0.0.1"])
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)


@pytest.fixture
def sync(bucket: Bucket, dest: Path, emulator: Emulator) -> Sync:
    return Sync(bucket, dest, emulator.url)


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[FaultProxy]:
    with FaultProxy(emulator.url, seed=1234) as p:
        yield p


@pytest.fixture
def proxied(bucket: Bucket, dest: Path, proxy: FaultProxy) -> Sync:
    """Like `sync`, but the CLI talks to the emulator through the fault proxy."""
    return Sync(bucket, dest, proxy.url)
