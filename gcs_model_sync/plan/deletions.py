"""Pure: every decision about what may be deleted, in one place.

make_plan() lists the candidates (versions gone from the bucket or outside --keep) and asks
guard.guard() whether the pass may delete at all; free_first() picks the ones a full disk may
delete before the installs; decide() takes the failures known so far and says what is deleted
and why the rest stays. A pass asks it in phases/settle.py, with what is known there: after
the installs for the model files (their failures decide), at the end for the prunes (the
files' failures and the server's answer decide too); `plan` asks it with the failures known before
any install (the rejections), which is what `once` deletes when every install then succeeds.
The log lines and `plan`'s rows both print its reasons (Decision.why); what a symbolic link
keeps out of the plan is links.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gcs_model_sync.failures import Failure, FailureKind
from gcs_model_sync.layout import split_id

if TYPE_CHECKING:
    from gcs_model_sync.local.scan import LocalView
    from gcs_model_sync.plan.actions import Prune
    from gcs_model_sync.plan.files_plan import FileChange
    from gcs_model_sync.plan.plan import Plan


# Why something stays, in the words both the pass's log and `plan`'s rows use.
HELD = "another version of this model failed or was rejected"
SKIPPED = "there were listing, download or disk errors"
FILE_BUSY = "a version of its model failed, is refused or is still uploading"
FILE_NO_DELETION = "no deletion may happen this pass"


def _waits_for(plan: Plan, p: Prune, now: int | None) -> str:
    serves = f"the server serves {'no version' if now is None else f'version {now}'}"
    pin = _pin(plan, p)
    return f"{serves}, not the pinned {pin}" if pin is not None else f"{serves}, none newer"


def _pin(plan: Plan, p: Prune) -> int | None:
    """The pin this prune's version is newer than, if any."""
    hold = plan.holds.get(p.managed.model)
    pin = hold.pin if hold is not None else None
    return pin if pin is not None and int(p.managed.version) > pin else None


@dataclass(frozen=True, slots=True)
class Decision:
    """What the end of a pass deletes (and which model files it changes), and why the rest
    stays: `why` has the reason of each held or gated prune and each held file."""

    prune: tuple[Prune, ...] = ()
    held: tuple[Prune, ...] = ()  # kept: another version of their model failed this pass
    skipped: tuple[Prune, ...] = ()  # kept: a listing, a read or the disk failed this pass
    refused: str | None = None  # a guard refused every deletion (exit 3)
    # kept: the server does not serve a newer version yet (--server); model -> what it serves
    gated: tuple[Prune, ...] = ()
    files: tuple[FileChange, ...] = ()  # model files written or removed now
    # not now: a version of their model failed or is still uploading (a new config.pbtxt must
    # never name a version that is not there), or, removals, no deletion may happen
    files_held: tuple[FileChange, ...] = ()
    why: Mapping[Prune | FileChange, str] = field(default_factory=dict, compare=False)


def decide(
    plan: Plan,
    failures: Iterable[Failure],
    served: Mapping[str, int | None] | None = None,
    told: bool = False,
) -> Decision:
    """rclone's rule: no deletion in a pass where a listing, a read or the disk failed. A
    version whose *content* was refused, or that does not fit on the disk, holds back only
    its own model's deletions, so one bad upload can neither block pruning everywhere nor
    leave a model short under --keep, and a full disk still frees what the bucket dropped.

    A model's files change only in a pass where all its versions are in place. With a
    model server to ask (`served`: model -> the newest version it serves), a version that a
    newer one supersedes is deleted only once the server serves a newer one: the folder it
    still reads stays. The newest version (a rollback, a model removed) has nothing newer to
    wait for. A pin the server is `told` of (--tfs-config names it) is a rollback it makes
    first: the versions newer than the pin go once it serves the pin and nothing newer."""
    if not plan.prunes and not plan.files:
        return Decision()
    failures = list(failures)
    failed_models = {f.model for f in failures}
    busy = failed_models | {w.version.model for w in plan.waiting}
    files_held = tuple(f for f in plan.files if f.model in busy)
    writes = tuple(f for f in plan.files if not f.removes and f not in files_held)
    removals = tuple(f for f in plan.files if f.removes and f not in files_held)
    # A version refused, not confirmed by the server, behind a symbolic link, or too big for
    # the disk says nothing about other models; and deleting elsewhere is what gives a full
    # disk room back.
    own = (FailureKind.CONTENT, FailureKind.ROLLOUT, FailureKind.LINK, FailureKind.SPACE)
    why: dict[Prune | FileChange, str] = dict.fromkeys(files_held, FILE_BUSY)
    blocked = any(f.kind not in own for f in failures)
    if blocked or plan.guard:
        why |= dict.fromkeys(removals, FILE_NO_DELETION)
        held_files = files_held + removals
        if blocked:
            why |= dict.fromkeys(plan.prunes, SKIPPED)
            return Decision(skipped=plan.prunes, files=writes, files_held=held_files, why=why)
        return Decision(refused=plan.guard, files=writes, files_held=held_files, why=why)
    held = tuple(p for p in plan.prunes if p.managed.model in failed_models)
    gated = _gated(plan, served, told) if served is not None else ()
    why |= dict.fromkeys(held, HELD)
    why |= {p: _waits_for(plan, p, (served or {}).get(p.managed.model)) for p in gated}
    prune = tuple(p for p in plan.prunes if p not in held and p not in gated)
    files = writes + removals
    return Decision(prune, held, gated=gated, files=files, files_held=files_held, why=why)


def _gated(plan: Plan, served: Mapping[str, int | None], told: bool) -> tuple[Prune, ...]:
    """Prunes of versions a newer kept one supersedes, while the server serves none newer;
    and, when the server is `told` the pin, of versions newer than it, until it serves the
    pin (not before: it may still read them)."""
    newest: dict[str, int] = {}
    kept = [i.version.id for i in plan.installs] + list(plan.in_sync)
    kept += [w.id for w in plan.waiting if w.installed]
    for vid in kept:
        model, version = split_id(vid)
        newest[model] = max(newest.get(model, -1), int(version))
    out = []
    for p in plan.prunes:
        m = p.managed
        number, now = int(m.version), served.get(m.model)
        pin = _pin(plan, p)
        if pin is not None:
            if told and now != pin:
                out.append(p)
        elif newest.get(m.model, -1) > number and (now is None or now <= number):
            out.append(p)
    return tuple(out)


def free_first(
    plan: Plan, local: LocalView, served: Mapping[str, int | None] | None = None
) -> tuple[Prune, ...]:
    """The prunes that may happen before the installs when they do not fit on the disk
    (rclone's delete-before, for this case only): versions the plan removes anyway, outside
    --keep or gone from the bucket. None past a guard; none in a model with a rejected version
    (its prunes wait, as they do at the end of a pass); never a model's newest version on
    disk, so a model keeps serving whatever the installs then do; with a model server to ask
    (`served`), only versions older than the one it serves."""
    if plan.guard:
        return ()
    rejected = {r.model for r in plan.rejections}
    newest: dict[str, int] = {}
    for vid in local.on_disk:
        model, version = split_id(vid)
        newest[model] = max(newest.get(model, -1), int(version))

    def superseded(p: Prune) -> bool:
        number, now = int(p.managed.version), (served or {}).get(p.managed.model)
        return number < newest.get(p.managed.model, -1) and (
            served is None or (now is not None and number < now)
        )

    return tuple(p for p in plan.prunes if p.managed.model not in rejected and superseded(p))
