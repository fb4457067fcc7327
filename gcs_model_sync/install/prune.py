"""Carry out the prunes deletions.decide() allows: versions retired into the trash, where a
reader inside one keeps a whole tree until the next pass (room.py frees some before the
installs)."""

from __future__ import annotations

import logging

from gcs_model_sync.install import publish
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan import deletions
from gcs_model_sync.plan.actions import Prune
from gcs_model_sync.report import local_failure


def prune(run: Pass, decision: deletions.Decision) -> None:
    """Delete what `decision` allows and say why each other version stays, in the words
    `plan` prints (Decision.why)."""
    if decision.refused:
        run.report.guard = decision.refused
        event(logging.ERROR, "guard_refused", f"{decision.refused}; nothing deleted")
        return
    if decision.skipped:
        event(
            logging.WARNING,
            "prune_skipped",
            f"not deleting {len(decision.skipped)} version(s): {deletions.SKIPPED}",
        )
    for p in decision.held:
        event(logging.WARNING, "prune_held", f"not deleting {p.managed.id}: {decision.why[p]}")
    for p in decision.gated:
        event(
            logging.INFO,
            "prune_waits",
            f"not deleting {p.managed.id} yet: {decision.why[p]}",
            model=p.managed.model,
            version=p.managed.version,
        )
    for p in decision.prune:
        retire(run, p)


def retire(run: Pass, p: Prune, note: str = "") -> bool:
    """One version renamed into the trash, disowned and reported; False if the disk
    refused."""
    m = p.managed
    target = run.paths.version_dir(m.model, m.version)
    try:
        publish.retire(target, run.paths.trash)
    except OSError as exc:
        local_failure(run.report, exc, m.model, m.id, f"{m.id}: cannot prune")
        return False
    run.ledger.retired(m, target.parent)
    event(
        logging.INFO,
        "pruned",
        f"pruned {m.id} ({p.reason}{note})",
        model=m.model,
        version=m.version,
        reason=p.reason,
    )
    return True
