"""What every step of one pass shares: its settings, folders, bucket, stop token, report and
ledger, handed to the steps as one object instead of a parameter each."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from gcs_model_sync.config import Config
from gcs_model_sync.ledger import Ledger
from gcs_model_sync.paths import Paths
from gcs_model_sync.remote import Bucket
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.state import Managed, State

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

    def keep(self, state: State) -> Ledger:
        """Start recording this pass's changes into `state`."""
        self.ledger = Ledger(self.paths, state, str(self.config.source), self.report)
        return self.ledger

    @property
    def managed(self) -> dict[str, Managed]:
        """The versions we own, as this pass has changed them so far."""
        return self.ledger.state.versions
