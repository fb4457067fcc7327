"""The pass's second phase: make room, then stage, verify and publish every install, and
record what became of each (workers.py runs the workers, fetch.py stages one version)."""

from __future__ import annotations

import contextlib

from gcs_model_sync.config import Config
from gcs_model_sync.install import room, workers
from gcs_model_sync.install.signature import Manifests, refusals_key
from gcs_model_sync.install.verify import Verify
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.report import install_state, published_as
from gcs_model_sync.source import partials


def deliver(run: Pass) -> None:
    """Leaves in `run.plan` the plan as carried out: with the sizes archives state, less what
    a full disk freed before the installs."""
    config, paths, ledger = run.config, run.paths, run.ledger
    plan = run.plan = room.make_room(run, run.plan, run.local)
    # A held install (a clash, a link) keeps its partial downloads for the pass that installs it.
    kept = (o for i in plan.installs + plan.held for o in i.version.objects)
    partials.remove_stale(paths.partial, kept)
    _install(run, plan)
    ledger.refused((r.id for r in plan.rejections if r.refused), refusals_key(config))
    ledger.failed(i.version for i in plan.installs)
    ledger.forget(plan.forget, plan.files_forget)


def _install(run: Pass, plan: Plan) -> None:
    """Every install of the plan, watched when the caller shows progress."""
    order = [i.version.id for i in plan.installs]
    linked = sum(r.linked_bytes for r in plan.reuse if r.version in set(order))  # not read
    total = sum(i.version.size for i in plan.installs) - linked
    report, counters = run.report, run.bucket.counters

    def in_flight() -> list[str]:
        """The pool takes installs in order: the first unfinished ones are being staged."""
        over = set(report.published) | {f.version for f in report.failures}
        return [vid for vid in order if vid not in over][: run.config.workers]

    with (
        run.watch(total, lambda: counters.bytes_read, in_flight)
        if run.watch and total
        else contextlib.nullcontext()
    ):
        pinned = Manifests(run.config.signature_key)
        workers.install_all(run, plan.installs, _check(run.config), _labels(run, plan), pinned)


def _check(config: Config) -> Verify | None:
    if not config.verify:
        return None
    env = {"GCS_MODEL_SYNC_DEST": str(config.dest), "GCS_MODEL_SYNC_SOURCE": str(config.source)}
    return Verify(config.verify, config.hook_timeout, env)


def _labels(run: Pass, plan: Plan) -> dict[str, str]:
    """How the `published` line names each install: new, resumed, replaced, reinstalled."""
    labels = {}
    for i in plan.installs:
        v = i.version
        resume = sum(partials.on_disk(run.paths.partial, o) for o in v.objects)
        have = run.managed.get(v.id)
        labels[v.id] = published_as(install_state(i, have.fingerprint if have else None, resume))
    return labels
