"""Room for the installs on a full disk: rclone's delete-before, for this case only."""

from __future__ import annotations

import logging
from dataclasses import replace

from gcs_model_sync.install import fetch, prune, rollout, space
from gcs_model_sync.local.durability import clean_scratch
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan import deletions
from gcs_model_sync.plan.plan import Plan


def make_room(run: Pass, plan: Plan, local: LocalView) -> Plan:
    """rclone's delete-before, for a full disk only: when the installs do not fit, empty the
    trash and free versions this plan removes anyway (deletions.free_first: never a model's newest,
    never past a guard, with --server only older than what it serves), oldest first, until they
    do; then install.

    Without it a disk that holds --keep versions never takes the next one: its space check
    fails, a failure blocks every prune, and every pass fails alike. Only a pass that installs
    while something is freeable looks further: one ranged read of each zip's end learns what
    it extracts to (its stored size may be a fraction of that). Returns the plan with those
    sizes, less the prunes done here (so the end-of-pass prune does not try them again).
    """
    candidates = deletions.free_first(plan, local) if plan.installs else ()
    if not candidates:
        return plan
    config, paths, bucket = run.config, run.paths, run.bucket
    plan = replace(plan, installs=space.with_stated_sizes(bucket, plan.installs, config.workers))
    need = sum(fetch.lacking(i.version, paths, config) for i in plan.installs)
    need += config.min_free_space
    free = space.free_bytes(paths.staging)
    if free >= need:
        return plan
    if config.server:  # only versions the model server has moved on from
        candidates = deletions.free_first(
            plan, local, rollout.ask(config, local.on_disk, bucket.stop)
        )
    trees = {p.managed.id: paths.dest / p.managed.id for p in candidates}
    room = free + space.tree_bytes(paths.trash) + sum(space.tree_bytes(t) for t in trees.values())
    short = (
        f"the installs need about {need} bytes (with --min-free-space {config.min_free_space}) "
        f"but {free} are free"
    )
    if room < need:
        event(
            logging.WARNING,
            "no_room",
            f"{short}, and freeing the {len(candidates)} version(s) this pass removes anyway "
            "would not make room: nothing deleted before installing",
        )
        return plan
    event(
        logging.WARNING,
        "delete_before",
        f"{short}: deleting versions this pass removes anyway before installing "
        "(trash first, then the oldest)",
        need=need,
        free=free,
    )
    clean_scratch(paths)  # the trash; staging is empty before the installs
    freed = []
    for p in sorted(candidates, key=lambda p: (int(p.managed.version), p.managed.model)):
        if space.free_bytes(paths.staging) >= need:
            break
        if not prune.retire(run, p, "; freed before installing"):
            break
        clean_scratch(paths)  # no grace period in the trash: the space is needed now
        freed.append(p)
    return replace(plan, prunes=tuple(p for p in plan.prunes if p not in freed))
