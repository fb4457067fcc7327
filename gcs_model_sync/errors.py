"""One error root, and the single place where outcomes become exit codes."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_GUARD = 3


class SyncError(Exception):
    """Anything we expect and can explain in one line; never shown with a traceback."""

    exit_code = EXIT_FAILED


class ConfigError(SyncError):
    exit_code = EXIT_USAGE


class LockBusy(SyncError):
    """Another run holds the destination lock."""


class Interrupted(SyncError):
    """A shutdown signal arrived; the pass stopped at a safe point."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
        self.exit_code = 128 + signum


class RemoteError(SyncError):
    """Listing or reading the bucket failed for good."""


class AccessDenied(RemoteError):
    pass


class BucketNotFound(RemoteError):
    pass


class TransientError(SyncError):
    """Worth another try: throttling, 5xx, a reset connection, a timeout."""


class ChecksumMismatch(TransientError):
    """The bytes we got are not the bytes that were listed; retried, never published."""


class ObjectChanged(SyncError):
    """The listed generation vanished mid-pass; the next pass sees the new one."""


class VersionRejected(SyncError):
    """The content of one version is unusable (bad archive, hostile entry, ambiguous, too big)."""


class VerifyRefused(VersionRejected):
    """--verify failed on a staged version: it is not published, and not tried again until
    its object changes."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome  # "failure" or "timeout", as the metric counts it


class InsufficientSpace(SyncError):
    """A version would not fit on the destination filesystem."""


def os_error(exc: OSError) -> str:
    """`[Errno 30] Read-only file system: '/models/x'` -> `Read-only file system (/models/x)`."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def exit_now(code: int) -> NoReturn:
    """Leave at once: no joining of transfer threads that may sit in a socket read for a
    minute, no unloading of google-cloud-storage's module graph (longer than a no-op pass).

    Safe: staging is private and cleaned by the next run, the state file was saved and
    closed, logs and std streams are flushed, and the kernel releases the destination lock
    with our file descriptors.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
