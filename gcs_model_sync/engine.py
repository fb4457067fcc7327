"""One reconciliation pass, in three phases that share one Pass (pass_.py):

- survey.py: list the prefix, take the lock, scan DEST and plan (plan.py, pure);
- deliver.py: make room, then stage, verify and publish every install;
- settle.py: model files, the TF Serving config, the rollout, the prunes.

What may be deleted or changed is decided in deletions.py alone; ledger.py records every
change into the state file and the report.
"""

from __future__ import annotations

from gcs_model_sync.config import Config
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.pass_ import Pass, Watch
from gcs_model_sync.phases import deliver, settle, survey
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.remote import Bucket


def sync_once(config: Config, stop: StopToken, watch: Watch | None = None) -> Report:
    """One pass; `watch(total_bytes, bytes_so_far, in_flight)` may show its progress (a
    terminal's bar)."""
    return _pass(Pass(config, stop, Paths(config.dest), Bucket(config, stop), Report(), watch))


def _pass(run: Pass) -> Report:
    with run:  # on the way out: the lock released, the bucket's counters in the report
        if survey.survey(run):
            deliver.deliver(run)
            settle.settle(run)
    return run.report
