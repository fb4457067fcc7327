"""One writer per destination: an advisory lock on a file under DEST.

The lock file is opened without following a symbolic link (a link placed there would have us
create or truncate a file elsewhere), and the process id is written into it only when it is
a plain file of its own (not a hard link to a file elsewhere): the id is a courtesy for
whoever looks, the lock is the flock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gcs_model_sync.errors import LockBusy
from gcs_model_sync.local.safepath import OwnFolderLinked
from gcs_model_sync.retry import StopToken


@contextmanager
def hold(lock_file: Path, timeout: float, stop: StopToken) -> Iterator[None]:
    """Wait up to `timeout` seconds for the lock; the kernel drops it if we are killed."""
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise OwnFolderLinked(lock_file) from None
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
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock
