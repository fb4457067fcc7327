"""What `plan` and `status` print, from views.py's rows: text for people, or one JSON
document; and the start line's config fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gcs_model_sync.cli.views import Planned
from gcs_model_sync.config import Config
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.redaction import redact
from gcs_model_sync.units import human


@dataclass(frozen=True, slots=True)
class Shown:
    """One source's report, as `each` prints it among the others: its document and text."""

    name: str
    config: Config
    doc: dict[str, Any]
    text: str


def each(config: Config, shown: list[Shown]) -> str:
    """Several sources' reports: one JSON document listing them (`{"sources": [...]}`, each
    with its `name`), or each text under a heading naming the source."""
    if config.output == "json":
        return json.dumps({"sources": [{"name": s.name, **s.doc} for s in shown]})
    return "\n\n".join(
        f"== {s.name}: {s.config.source} -> {s.config.dest}\n{s.text}" for s in shown
    )


def failed(name: str, config: Config, message: str) -> Shown:
    """A source whose report could not be made (its listing failed), among the others."""
    doc = {"source": str(config.source), "dest": str(config.dest), "error": message}
    return Shown(name, config, doc, f"  error: {message}")


def plan_doc(config: Config, plan: Plan, planned: Planned) -> dict[str, Any]:
    return {
        "source": str(config.source),
        "dest": str(config.dest),
        "actions": planned.rows,
        "in_sync": list(plan.in_sync),
        "guard": planned.guard,
    }


def plan_output(config: Config, plan: Plan, planned: Planned) -> str:
    """What `plan` prints: one JSON document with --output json, else a line per action and
    the counts."""
    if config.output == "json":
        return json.dumps(plan_doc(config, plan, planned))
    lines = [f"plan: {config.source} -> {config.dest}"]
    for row in planned.rows:
        detail = f"{row['form']}, " if "form" in row else ""
        detail += f"{_sizes(row)}{row['reason']}"
        lines.append(f"  {row['action']:<12} {row['version']:<32} {detail}")
    lines += [f"  {line}" for line in planned.guard_lines]
    n_fetch = sum(1 for i in plan.installs if not i.replaces)
    files = f", {len(planned.decision.files)} model file(s) to change" if plan.files else ""
    lines.append(
        f"{n_fetch} to fetch, {len(plan.installs) - n_fetch} to replace, "
        f"{len(planned.decision.prune)} to prune, {len(plan.in_sync)} in sync, "
        f"{len(plan.waiting)} waiting, {len(plan.rejections)} rejected{files}"
    )
    return "\n".join(lines)


def status_output(config: Config, models: list[dict[str, Any]], planned: Planned) -> str:
    """What `status` prints: one JSON document with --output json, else a table of models
    (views.model_status) and the guard."""
    if config.output == "json":
        return json.dumps(status_doc(config, models, planned))
    width = max([len(m["model"]) for m in models] + [5])
    lines = [f"{'MODEL':<{width}}  {'BUCKET':<24}  {'LOCAL':<24}  STATE"]
    for m in models:
        lines.append(
            f"{m['model']:<{width}}  {_versions(m['bucket']):<24}  "
            f"{_versions(m['local']):<24}  {status_line(m)}"
        )
    return "\n".join(lines + planned.guard_lines)


def status_doc(config: Config, models: list[dict[str, Any]], planned: Planned) -> dict[str, Any]:
    return {
        "source": str(config.source),
        "dest": str(config.dest),
        "models": models,
        "guard": planned.guard,
    }


def _sizes(row: dict[str, Any]) -> str:
    """The sizes of a row, labelled as the `published` line labels them."""
    said = []
    if row.get("download_bytes") is not None:
        said.append(f"download {human(row['download_bytes'])}")
    if disk := row.get("disk_bytes"):
        if row["action"] == "replace":  # the installed one's size: the new one's is not known
            said.append(f"replaces {human(disk)} on disk")
        else:
            said.append(f"on disk {human(disk)}")
    return "".join(f"{s}, " for s in said)


def status_line(model: dict[str, Any]) -> str:
    """A model's STATE column: in sync, or each pending change in a few words; and what
    holds versions in place (a pin, aliases)."""
    state = "in sync"
    if model["pending"]:
        state = "out of sync: " + ", ".join(_said(e) for e in model["pending"])
    held = [f"pinned {model['pin']}"] if model.get("pin") is not None else []
    held += [f"{label} -> {v}" for label, v in (model.get("aliases") or {}).items()]
    return f"{state} ({'; '.join(held)})" if held else state


def _said(e: dict[str, Any]) -> str:
    action, v, state = e["action"], e.get("version"), e.get("state")
    if action in ("fetch", "replace"):
        if state == "failed":
            return f"failed {v} ({e['error']})"
        if state == "resuming":
            total = human(e["download_bytes"])
            return f"resuming {v} ({human(e['resume_bytes'])} of {total} on disk)"
        if state == "reinstall":
            return f"reinstall {v} (its folder is gone)"
        return f"{state} {v}"
    if action in ("wait", "hold", "reject"):
        word = {"wait": "waiting", "hold": "hold", "reject": "rejected"}[action]
        return f"{word} {v} ({e['reason']})"
    if action == "refuse-prune":
        return f"refused prune {v}"
    if action == "refuse":
        return f"refused ({e['reason']})"
    if action.endswith("-file"):
        return f"{action.removesuffix('-file')} {e['file']}"
    return f"{action} {v}"


def _versions(vs: list[str]) -> str:
    text = " ".join(vs) or "-"
    return text if len(text) <= 24 else "…" + text[-23:]


def start_fields(config: Config) -> dict[str, Any]:
    """Every Config field for the start line, JSON-ready and redacted: URLs (--endpoint,
    --server) and commands (--on-change, --verify) may carry credentials."""
    fields = {name: _json_value(getattr(config, name)) for name in config.__dataclass_fields__}
    return {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}


def _json_value(value: Any) -> Any:
    """Numbers, booleans and None keep their JSON types; paths and sources become strings."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)
