"""What every step of one pass shares: its settings, folders, bucket, stop token, report,
ledger and plan, handed to the steps as one object instead of a parameter each."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from gcs_model_sync.config import Config
from gcs_model_sync.ledger import Ledger
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import Managed, State
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.remote import Bucket

# Shows a pass's progress: called with the bytes to read, a way to read the count so far, and
# one to read the versions in flight.
Watch = Callable[[int, Callable[[], int], Callable[[], list[str]]], AbstractContextManager[object]]


@dataclass(eq=False)
class Pass:
    config: Config
    stop: StopToken
    paths: Paths
    bucket: Bucket
    report: Report
    watch: Watch | None = None
    # Set by keep() once the state file is read (under the lock): every step after uses it.
    ledger: Ledger = field(init=False)
    # Set by survey.py: what DEST holds and the plan carried out (deliver.py may free room
    # first).
    local: LocalView = field(init=False)
    plan: Plan = field(init=False)
    # What the pass holds until it ends (the lock), released on the way out.
    held: contextlib.ExitStack = field(init=False, default_factory=contextlib.ExitStack)
    started: float = field(init=False, default_factory=time.monotonic)

    def __enter__(self) -> Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the lock and put the bucket's counters in the report."""
        self.held.close()
        report, counters = self.report, self.bucket.counters
        report.bytes_downloaded = counters.bytes_read
        report.list_requests = counters.list_requests
        report.object_reads = counters.object_reads
        report.peak_connections = self.bucket.link.connections.peak
        report.seconds = time.monotonic() - self.started

    def keep(self, state: State) -> Ledger:
        """Start recording this pass's changes into `state`."""
        self.ledger = Ledger(self.paths, state, str(self.config.source), self.report)
        return self.ledger

    @property
    def managed(self) -> dict[str, Managed]:
        """The versions we own, as this pass has changed them so far."""
        return self.ledger.state.versions
