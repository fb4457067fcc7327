"""Pure: what a symbolic link below DEST keeps out of the plan. Nothing is written, renamed
or deleted through one (safepath.py refuses it where it happens); the plan says so first, as
one failure per link and model, so that model's other deletions wait and the rest go on."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gcs_model_sync.failures import Failure, FailureKind
from gcs_model_sync.local import safepath

if TYPE_CHECKING:
    from gcs_model_sync.plan.plan import Plan


def refuse(plan: Plan, dest: Path, links: Collection[str]) -> tuple[Plan, tuple[Failure, ...]]:
    """Take out of the plan every install, prune and model file change that would go through
    a link (`links`: the path below DEST of each link where a model folder, a folder above
    one, or a version folder is). Returns the plan without them, and one failure per link
    and model that refused something: a failure of that model alone (its other deletions
    wait, other models go on), named by the link."""
    refused: dict[tuple[str, str], list[str]] = {}

    def through(rel: str, model: str, what: str) -> bool:
        parts = rel.split("/") if rel else []
        for n in range(1, len(parts) + 1):
            if (prefix := "/".join(parts[:n])) in links:
                refused.setdefault((prefix, model), []).append(what)
                return True
        return False

    v = [
        i
        for i in plan.installs
        if not through(i.version.id, i.version.model, f"install {i.version.id}")
    ]
    p = [
        x
        for x in plan.prunes
        if not through(x.managed.id, x.managed.model, f"prune {x.managed.id}")
    ]
    f = [
        c
        for c in plan.files
        if not through(c.model, c.model, f"{'remove' if c.removes else 'write'} {c.id}")
    ]
    if not refused:
        return plan, ()
    failures = tuple(
        Failure(
            model,
            rel if rel.count("/") >= (model.count("/") + 1 if model else 0) else None,
            f"{dest / rel}: {safepath.NOT_FOLLOWED}; refusing to {', '.join(whats)}",
            FailureKind.LINK,
        )
        for (rel, model), whats in sorted(refused.items())
    )
    held = plan.held + tuple(i for i in plan.installs if i not in v)
    return replace(plan, installs=tuple(v), held=held, prunes=tuple(p), files=tuple(f)), failures
