"""One writer per destination: an advisory lock on a file under DEST."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gcs_model_sync.errors import LockBusy
from gcs_model_sync.retry import StopToken


@contextmanager
def hold(lock_file: Path, timeout: float, stop: StopToken) -> Iterator[None]:
    """Wait up to `timeout` seconds for the lock; the kernel drops it if we are killed."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"{lock_file}: another gcs-model-sync is writing to this destination "
                        f"(waited {timeout:g}s); try again later"
                    ) from None
                stop.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock
