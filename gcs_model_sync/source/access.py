"""One pass's access to the bucket: what every listing page and object read goes through.

The process's connection (auth.py), this pass's request and byte counters, its budget of
connections and bandwidth (throttle.py), its stop token, and one retry budget per request.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from gcs_model_sync import retry
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import RemoteError, SyncError
from gcs_model_sync.source import auth, explain
from gcs_model_sync.source.throttle import Link

T = TypeVar("T")


@dataclass
class Counters:
    """Requests and bytes, for logs, metrics and the request-budget test."""

    list_requests: int = 0
    object_reads: int = 0
    bytes_read: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, *, lists: int = 0, reads: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.list_requests += lists
            self.object_reads += reads
            self.bytes_read += nbytes


class Access:
    """Read-only access to one bucket for one pass (remote.Bucket adds what it is asked)."""

    def __init__(self, config: Config, stop: retry.StopToken) -> None:
        self.source: Source = config.source
        self.config = config
        self.stop = stop
        self.counters = Counters()
        self.link = Link(config.connections, config.bwlimit, stop)
        self.budget = retry.Budget(config.retry_attempts, config.retry_deadline, stop)
        self.session, self.client, self.base, self.unsent = auth.connect(auth.Settings.of(config))
        # Requester-pays buckets bill the caller's project: `userProject` on every request.
        self.bucket_ref = self.client.bucket(
            self.source.bucket, user_project=config.billing_project
        )
        self.read_query = urlencode(
            {"alt": "media"}
            | ({"userProject": config.billing_project} if config.billing_project else {})
        )

    def retried(self, fn: Callable[[], T], what: str) -> T:
        """One request's budget. When it runs out the failure is final (RemoteError, one
        line naming the bucket or object): nothing above retries the same request again."""
        return retry.call(
            fn,
            what=what,
            budget=self.budget,
            gave_up=functools.partial(self._gave_up, what),
        )

    def _gave_up(self, what: str, exc: BaseException, how: str) -> RemoteError:
        reason = str(exc) if isinstance(exc, SyncError) else f"{what}: {explain.plain(exc)}"
        return RemoteError(
            f"{reason.rstrip('.')}; {how} (--retry-attempts {self.config.retry_attempts}, "
            f"--retry-deadline {self.config.retry_deadline:g}s)"
        )
