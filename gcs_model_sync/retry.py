"""The retry policy, in one place: what is transient, and how long we keep trying."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from gcs_model_sync.errors import Interrupted, TransientError

T = TypeVar("T")
log = logging.getLogger("gcs_model_sync")


class StopToken:
    """Set by a signal handler; long operations poll it and waits end early."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum = 0

    def set(self, signum: int = 15) -> None:
        self.signum = signum
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Interrupted(self.signum)

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when a stop was requested."""
        return self._event.wait(seconds)

    def sleep(self, seconds: float) -> None:
        """A wait that a shutdown signal cuts short (then raises Interrupted)."""
        self._event.wait(seconds)
        self.check()


def transient_status(status: int) -> bool:
    """An HTTP status worth another try: 429 (slow down) and every 5xx."""
    return status == 429 or status >= 500


def is_transient(exc: BaseException, *, streaming: bool = False) -> bool:
    """Worth another try: a TransientError, a 429/5xx from the storage library, or trouble
    reaching the server (refused, reset, timed out, an answer that broke off, a token request
    that did not get through). A TLS failure is final: the next try meets the same certificate.

    `streaming`: the failure came while a body was being read, where any transport error (TLS
    included) is the connection breaking off, and the read resumes at its offset.
    """
    if isinstance(exc, TransientError):
        return True
    try:
        import requests
        import urllib3
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc
    except ImportError:  # pragma: no cover
        return False
    if streaming:
        return isinstance(
            exc, urllib3.exceptions.HTTPError | requests.exceptions.RequestException | OSError
        )
    if isinstance(exc, gexc.GoogleAPICallError):
        return exc.code is not None and transient_status(exc.code)
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError
        | ConnectionError
        | TimeoutError
        | urllib3.exceptions.HTTPError
        | auth_exc.TransportError,
    )


@dataclass(frozen=True, slots=True)
class Budget:
    """What one request may spend on retries: tries and seconds, with waits that a stop cuts
    short."""

    attempts: int
    deadline: float
    stop: StopToken
    max_wait: float = 10.0  # the longest backoff between two tries


def call(
    fn: Callable[[], T],
    *,
    what: str,
    budget: Budget,
    retry_on: Callable[[BaseException], bool] = is_transient,
    gave_up: Callable[[BaseException, str], BaseException] | None = None,
) -> T:
    """Run fn, retrying failures that `retry_on` accepts (transient ones by default) with
    jittered exponential backoff.

    When the budget's attempts or deadline run out, the last exception is re-raised as it is, or,
    given `gave_up`, what `gave_up(exc, "gave up after N tries in S s")` returns is raised
    from it: one final, explained error instead of one that still looks worth a retry.
    """
    started = time.monotonic()
    # The first try needs none of tenacity's machinery, which costs more than reading 256 KiB
    # from a socket: the hot path of a download is one call per chunk. A failure goes on to
    # tenacity as its own first attempt, so waits, budget and statistics count it.
    first: list[BaseException] = []
    try:
        return fn()
    except Exception as exc:
        if not retry_on(exc):
            raise
        first.append(exc)

    def attempt() -> T:
        if first:
            raise first.pop()
        return fn()

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(budget.attempts)
        | tenacity.stop_after_delay(budget.deadline),
        wait=tenacity.wait_random_exponential(multiplier=0.25, max=budget.max_wait),
        retry=tenacity.retry_if_exception(retry_on),
        sleep=budget.stop.sleep,
        reraise=True,
        before_sleep=lambda rs: log.debug(
            "retrying %s after %s (attempt %d)",
            what,
            rs.outcome.exception() if rs.outcome else "?",
            rs.attempt_number,
        ),
    )
    try:
        return retrying(attempt)
    except Exception as exc:
        if gave_up is None or not retry_on(exc):
            raise
        tries = int(retrying.statistics.get("attempt_number", 1))
        how = f"gave up after {tries} {'try' if tries == 1 else 'tries'}"
        raise gave_up(exc, f"{how} in {time.monotonic() - started:.1f}s") from exc
