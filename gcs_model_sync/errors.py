"""One error root, and the single place where outcomes become exit codes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_GUARD = 3


def exit_code(
    error: BaseException | None = None, *, guarded: bool = False, failed: bool = False
) -> int:
    """The one place outcomes become exit codes: an error that ended the command (a shutdown
    signal 128+N, a usage or configuration error 2, anything else 1), or else how it ended
    (a safety guard refused deletions 3, something failed 1, 0)."""
    if isinstance(error, Interrupted):
        return 128 + error.signum
    if isinstance(error, ConfigError):
        return EXIT_USAGE
    if error is not None or (failed and not guarded):
        return EXIT_FAILED
    return EXIT_GUARD if guarded else EXIT_OK


def worst(codes: Iterable[int]) -> int:
    """The exit code of several sources' outcomes: the worst of theirs, ranked as exit_code
    ranks one outcome (a signal, usage, a guard, a failure, success); 0 for none."""

    def rank(code: int) -> int:
        return code if code >= 128 else (EXIT_OK, EXIT_FAILED, EXIT_GUARD, EXIT_USAGE).index(code)

    return max(codes, key=rank, default=EXIT_OK)


class SyncError(Exception):
    """Anything we expect and can explain in one line; never shown with a traceback."""

    @property
    def exit_code(self) -> int:
        return exit_code(self)


class ConfigError(SyncError):
    """A usage or configuration error: the command cannot start as asked."""


class LockBusy(SyncError):
    """Another run holds the destination lock."""


class Interrupted(SyncError):
    """A shutdown signal arrived; the pass stopped at a safe point."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


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


class ManifestRefused(VersionRejected):
    """A staged version does not match its V.sha256, or --signature-key does not verify its
    V.sig: not published, and not tried again until its objects change."""


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
