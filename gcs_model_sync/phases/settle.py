"""The pass's last phase, once every install was tried: model files, the TF Serving config,
the rollout confirmed with the server, then the prunes, and the state file saved.

A model's files change after its versions are published, and only when all of them are; the
config names new models before the server is asked, since TF Serving learns them from it;
what the server may load is recorded as ours before it is asked; the prunes come last. This is
the one place a pass asks deletions.decide(): for the files first, then, once the files'
failures and the server's answer are known, for the prunes."""

from __future__ import annotations

import logging

from gcs_model_sync.errors import SyncError
from gcs_model_sync.failures import Step, classify
from gcs_model_sync.install import model_files, prune, rollout
from gcs_model_sync.layout import numbers_by_model, split_id
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan import deletions, pins
from gcs_model_sync.servers import tfs_config
from gcs_model_sync.servers.server import server_name


def settle(run: Pass) -> None:
    config, report, ledger, plan = run.config, run.report, run.ledger, run.plan
    decision = deletions.decide(plan, report.failures)
    for f in decision.files_held:
        event(
            logging.WARNING,
            "file_held",
            f"not changing {f.id} yet: {decision.why[f]}",
            model=f.model,
            file=f.name,
        )
    if decision.files:
        model_files.apply(run, decision.files)
    on_disk = run.local.on_disk | set(report.published)
    served = None
    if config.tfs_config:
        _write_tfs_config(run)
    if config.server:
        ledger.save()
        changed = {split_id(v)[0] for v in report.published}
        changed |= {split_id(f)[0] for f in report.files_written + report.files_removed}
        served = rollout.confirm(run, on_disk, changed)
    told = config.tfs_config is not None  # the config names each pin: the server moves first
    prune.prune(run, deletions.decide(plan, report.failures, served, told))
    ledger.save()
    report.on_disk = on_disk - set(report.pruned)
    if config.server and not told:
        rolled_back = {split_id(v)[0] for v in report.pruned} & set(config.pins)
        if rolled_back:
            rollout.confirm_pins(run, report.on_disk, rolled_back)
    if config.tfs_config and report.pruned:
        _write_tfs_config(run)


def _write_tfs_config(run: Pass) -> None:
    """Name every model that has a version under DEST, so TF Serving learns of new models;
    a pinned or aliased model with the versions to serve and their labels (pins.serving)."""
    config, paths, managed = run.config, run.paths, run.managed
    assert config.tfs_config is not None
    now: dict[str, set[int]] = {}
    for m in managed.values():
        if paths.version_dir(m.model, m.version).is_dir():
            now.setdefault(m.model, set()).add(int(m.version))
    before = numbers_by_model(run.local.on_disk)
    try:
        serving = {
            server_name(model, paths.dest): told
            for model, versions in now.items()
            if (told := pins.serving(run.plan.holds.get(model), versions, before.get(model, ())))
        }
        text = tfs_config.render(tfs_config.models_for(paths.dest, now), serving)
        if tfs_config.write_if_changed(config.tfs_config, text, paths.dest):
            event(logging.INFO, "tfs_config", f"wrote {config.tfs_config} ({len(now)} models)")
    except (SyncError, OSError, ValueError) as exc:
        message = f"--tfs-config {config.tfs_config}: {exc}"
        run.report.fail(classify(exc, Step.WRITE), None, None, message)
        event(logging.ERROR, "tfs_config_failed", message)
