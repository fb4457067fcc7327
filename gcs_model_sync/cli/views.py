"""What `plan` prints and `status` groups by model, as JSON-ready rows: one per action `once`
would take, with structured fields. render.py turns them into text and documents."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs_model_sync.config import Config
from gcs_model_sync.errors import exit_code
from gcs_model_sync.layout import split_id, version_id
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.phases.snapshot import Snapshot, required
from gcs_model_sync.plan import deletions, reuse, signed
from gcs_model_sync.plan.actions import Install
from gcs_model_sync.plan.filters import Filtered
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.report import install_state, known_failures
from gcs_model_sync.source import partials
from gcs_model_sync.units import human


@dataclass(frozen=True, slots=True)
class Planned:
    """What `plan` prints and `status` groups by model: one row per action (JSON-ready), the
    exit code `plan` gives, and the guard that refuses this pass's deletions (None: none)."""

    rows: list[dict[str, Any]]
    code: int
    guarded: bool  # a guard refuses this pass's deletions: `plan` and `status` exit 3
    guard: str | None
    guard_lines: list[str]
    decision: deletions.Decision


def plan_rows(
    config: Config, snap: Snapshot, served: dict[str, int | None] | None = None
) -> Planned:
    """Every row `once` would act on, with structured fields: `version` (the id, `m/3`),
    `model`, `number`, `action`, `state` (installs: new, failed, resuming, replace,
    reinstall), `reason`, sizes (`download_bytes`, `disk_bytes`, `resume_bytes`), and what
    an install links instead of downloading (`linked_from`, `linked_files`, `linked_bytes`)."""
    p = snap.plan
    rows = [_install_row(i, snap, Paths(config.dest).partial) for i in p.installs]
    for row, i in zip(rows, p.installs, strict=True):
        if names := signed.checked(i.version, required(config)):
            row["reason"] += f"; checked against {' and '.join(names)} before publishing"
    linked = {f.model for f in snap.refused}
    unfollowed = {problem.model for problem in p.problems}
    for i in p.held:
        if i.version.model in linked:
            why = "its model's folder is a symbolic link"
        elif i.version.model in unfollowed:
            why = "its model's pin or aliases cannot be followed"
        else:
            why = "a version number of this model is spelled two ways"
        rows.append(_row("hold", i.version.id, f"{i.reason}; kept back: {why}", state="held"))
    for w in p.waiting:
        kept = " (installed version stays)" if w.installed else ""
        rows.append(_row("wait", w.id, f"{w.reason}{kept}", state=str(w.kind)))
    # Exactly what `once` deletes if every install succeeds: the rejections are the only
    # failures known before installing; with --server, what the server serves now.
    told = config.tfs_config is not None
    decision = deletions.decide(p, known_failures(p), served, told)
    for pr in p.prunes:
        action, reason = "prune", pr.reason
        if decision.refused:
            action = "refuse-prune"
        elif pr in decision.held or pr in decision.gated:
            action, reason = "hold", f"{pr.reason}; kept: {decision.why[pr]}"
        rows.append(_row(action, pr.managed.id, reason, disk_bytes=pr.managed.bytes or None))
    rows += _file_rows(p, decision)
    for r in p.rejections:
        state = "refused" if r.refused else "rejected"
        rows.append(_row("reject", r.id, r.message, state=state))
    for problem in p.problems:
        said: dict[str, Any] = {"action": "reject", "version": problem.model or ".", "number": None}
        rows.append(said | {"model": problem.model, "state": "hold", "reason": problem.message})
    rows += _hold_rows(p)
    for f in snap.refused:  # what a symbolic link below DEST keeps `once` from doing
        number = split_id(f.version)[1] if f.version else None
        row = {"action": "refuse", "version": f.version or f.model, "model": f.model}
        rows.append(row | {"number": number, "state": "link", "reason": f.message})
    for vid in p.unmanaged:
        rows.append(_row("leave", vid, "unmanaged folder, not in bucket"))
    if snap.filtered is not None:
        rows += filter_rows(snap.filtered)
    pruned = {pr.managed.id for pr in p.prunes}
    for vid in p.outside_keep:
        if vid in pruned:  # installed: its prune row says it already
            continue
        rows.append(_row("skip", vid, f"outside --keep {config.keep}"))
    lines = [f"guard: {g}" for g in (p.guard if p.prunes else None, p.empty) if g]
    guarded = bool(p.guard and p.prunes) or bool(p.empty)
    code = exit_code(guarded=guarded, failed=bool(p.rejections or p.problems or snap.refused))
    return Planned(rows, code, guarded, p.guard or p.empty, lines, decision)


def filter_rows(f: Filtered) -> list[dict[str, Any]]:
    """What --include/--exclude leave out, and what they and --refuse-pickle leave alone."""
    by = "by --include/--exclude"
    rows = [
        {"action": "exclude", "version": m, "model": m, "number": None, "state": "filtered"}
        | {"reason": f"model excluded {by}: not installed, what is installed left alone"}
        for m in f.models
    ]
    rows += [
        _row("exclude", v, f"excluded {by}: not installed", state="filtered") for v in f.versions
    ]
    for vid, n in sorted(f.excluded.items()):
        rows.append(
            _row("exclude", vid, f"{n} file(s) excluded {by}, never downloaded", state="files")
        )
    refused = {r.id for r in f.rejections}
    for vid in f.left:
        why = "its bucket version is rejected" if vid in refused else f"excluded {by}"
        rows.append(_row("leave", vid, f"installed; {why}: left alone, not pruned"))
    return rows


def _row(action: str, vid: str, reason: str, **fields: Any) -> dict[str, Any]:
    model, number = split_id(vid)
    return {"action": action, "version": vid, "model": model, "number": number} | {
        "state": None,
        "reason": reason,
        **fields,
    }


def _install_row(i: Install, snap: Snapshot, partial: Path) -> dict[str, Any]:
    """A fetch or replace, and what it is: new, failed last pass (why), resuming a partial
    download, a replace, or a reinstall of a folder of ours that is gone."""
    v = i.version
    resume = sum(partials.on_disk(partial, o) for o in v.objects)
    have = snap.state.versions.get(v.id)
    state = install_state(i, have.fingerprint if have else None, resume)
    reason = {
        "new": "new",
        "resuming": "resumes",
        "replace": i.reason,
        "reinstall": "installed before; its folder is gone",
    }[state]
    last = snap.state.failed.get(v.id)
    error = None
    if last is not None and last.fingerprint == v.fingerprint:
        state, error = "failed", last.message
        reason = f"failed last pass: {last.message}"
    if resume:
        reason = (
            f"{reason} with {human(resume)} on disk"
            if state == "resuming"
            else (f"{reason}; resumes with {human(resume)} on disk")
        )
    links = reuse.find(snap.plan.reuse, v.id)
    if links is not None:
        reason = f"{reason}; {links.describe()}"
    return _row(
        "replace" if i.replaces else "fetch",
        v.id,
        reason,
        state=state,
        form=str(v.form),
        objects=len(v.entries),
        bytes=v.size,
        download_bytes=v.size if links is None else links.download_bytes,
        disk_bytes=have.bytes or None if have and i.replaces else None,
        resume_bytes=resume,
        error=error,
        linked_from=links.source.id if links else None,
        linked_files=len(links.links) if links else 0,
        linked_bytes=links.linked_bytes if links else 0,
    )


def _hold_rows(p: Plan) -> list[dict[str, Any]]:
    """What each pin and alias holds in place, and what a pin or alias keeps that the bucket
    dropped."""
    rows = []
    for model, hold in sorted(p.holds.items()):
        if hold.pin is not None:
            reason = f"pinned: --pin {model or '.'}={hold.pin}"
            rows.append(_row("pin", version_id(model, str(hold.pin)), reason, state="pinned"))
        for label, number in hold.labels.items():
            assert hold.aliases is not None
            where = f"{hold.aliases.where}#{hold.aliases.generation}"
            reason = f"alias {label} -> {number} ({where})"
            rows.append(_row("alias", version_id(model, str(number)), reason, label=label))
    for vid in p.kept:
        rows.append(_row("keep", vid, "removed from the bucket; kept while pinned or aliased"))
    return rows


def _file_rows(p: Plan, decision: deletions.Decision) -> list[dict[str, Any]]:
    """--model-files: what `once` writes, removes, holds back and leaves alone."""
    rows: list[dict[str, Any]] = []
    for f in p.files:
        if f in decision.files:
            action = "remove-file" if f.removes else "write-file"
            rows.append(_file_row(action, f.model, f.name, f.reason))
        else:
            reason = f"{f.reason}; {decision.why[f]}"
            rows.append(_file_row("hold-file", f.model, f.name, reason))
    for fid in p.files_left:
        reason = "in the bucket, but a file we did not write is there; left alone"
        model, name = split_id(fid)
        rows.append(_file_row("leave", model, name, reason))
    return rows


def _file_row(action: str, model: str, name: str, reason: str) -> dict[str, Any]:
    return {"action": action, "version": f"{model}/{name}", "model": model, "file": name} | {
        "state": None,
        "reason": reason,
    }


NOT_PENDING = ("leave", "skip", "exclude", "pin", "alias", "keep")  # rows that change nothing


def model_status(snap: Snapshot, planned: Planned) -> list[dict[str, Any]]:
    """Per model: versions in the bucket, versions on disk, and what a pass would change
    (plan's rows for that model, `version` being the number)."""
    p = snap.plan
    bucket: dict[str, set[str]] = {}
    for i in p.installs + p.held:
        bucket.setdefault(i.version.model, set()).add(i.version.version)
    for vid in (*p.in_sync, *p.outside_keep, *(r.id for r in p.rejections if r.listed)):
        model, version = _split(vid)
        bucket.setdefault(model, set()).add(version)
    for w in p.waiting:
        bucket.setdefault(w.version.model, set()).add(w.version.version)
    local: dict[str, set[str]] = {}
    for vid in snap.local.on_disk:
        model, version = _split(vid)
        local.setdefault(model, set()).add(version)
    pending: dict[str, list[dict[str, Any]]] = {}
    for row in planned.rows:
        if row["action"] in NOT_PENDING:
            continue
        entry = {k: v for k, v in row.items() if k not in ("version", "model", "number")}
        entry["version"] = row.get("number")
        pending.setdefault(row["model"], []).append(entry)
    out = []
    for model in sorted(set(bucket) | set(local)):
        out.append(
            {
                "model": model or ".",
                "bucket": sorted(bucket.get(model, ()), key=int),
                "local": sorted(local.get(model, ()), key=int),
                "in_sync": not pending.get(model),
                "pending": pending.get(model, []),
                "pin": hold.pin if (hold := p.holds.get(model)) else None,
                "aliases": dict(hold.labels) if hold else {},
            }
        )
    return out


def _split(vid: str) -> tuple[str, str]:
    model, version = split_id(vid)
    assert version_id(model, version) == vid
    return model, version
