"""Pure: whether a pass may delete at all. make_plan() asks it while planning (it alone knows
the listing's counts); deletions.decide() and free_first() read its answer from the plan."""

from __future__ import annotations


def guard(
    candidates: int, listed_versions: int, managed: int, allow_empty: bool, max_delete: int | None
) -> str | None:
    """Why no deletion may happen this pass at all, or None."""
    if candidates and not listed_versions and not allow_empty:
        return (
            f"the bucket listing holds no versions while {managed} managed "
            "version(s) exist locally; refusing to delete (pass --allow-empty-source to allow)"
        )
    if max_delete is not None and candidates > max_delete:
        return f"{candidates} deletions planned, more than --max-delete {max_delete}"
    return None
