"""Plans for the planner's tests: a listing under prefix P, a local view, the options."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gcs_model_sync.layout import Entry, RemoteObject, fingerprint, group, model_files
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import Managed, ManagedFile
from gcs_model_sync.plan.plan import Plan, PlanOptions, make_plan

P = "p/"


def parse_key(name: str, prefix: str) -> Entry | None:
    """One object classified alone; None: not part of any version (ignored)."""
    entries = [e for es in group([RemoteObject(name, 0, 0)], prefix).values() for e in es]
    return entries[0] if entries else None


def obj(key: str, generation: int = 1, size: int = 10) -> RemoteObject:
    return RemoteObject(P + key, generation, size)


def fp(*objs: RemoteObject) -> str:
    """The fingerprint the planner computes for these objects (one version)."""
    [entries] = group(objs, P).values()
    return fingerprint(entries[0].form, entries)


def view(managed: Iterable[Managed] = (), on_disk: Iterable[str] = ()) -> LocalView:
    return LocalView({m.id: m for m in managed}, frozenset(on_disk))


def plan_of(objects: Iterable[RemoteObject], local: LocalView, **options: Any) -> Plan:
    """The plan for this listing under prefix P, grouped as the engine groups it; `options`
    are PlanOptions' fields."""
    return make_plan(group(objects, P), local, PlanOptions(**options))


def files_plan(
    objects: list[RemoteObject],
    files: Iterable[ManagedFile] = (),
    entries: Iterable[str] = (),
    managed: Iterable[Managed] = (),
    on_disk: Iterable[str] = (),
) -> Plan:
    """The plan with --model-files on: `files` are ours, `entries` what the model folders hold."""
    local = LocalView(
        {m.id: m for m in managed},
        frozenset(on_disk),
        {f.id: f for f in files},
        frozenset(entries),
    )
    groups = group(objects, P)
    listed = model_files(objects, P, {model for model, _v, _f in groups})
    return make_plan(groups, local, files=listed)


def installs(plan: Plan) -> dict[str, str]:
    return {i.version.id: i.reason for i in plan.installs}


def prunes(plan: Plan) -> dict[str, str]:
    return {p.managed.id: p.reason for p in plan.prunes}


def has_changes(plan: Plan) -> bool:
    """Whether carrying out the plan changes DEST: an install, a model file, or a prune the
    guards let happen."""
    return bool(plan.installs or plan.files or (plan.prunes and not plan.guard))
