"""Pure: what each listed and each installed version becomes: an install (new, changed, missing
locally, replacing an unmanaged folder), in sync, outside --keep, waiting for its upload; a
prune, a state entry to forget, or kept in place by a pin or an alias. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gcs_model_sync.layout import Form
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import Managed
from gcs_model_sync.plan import completeness
from gcs_model_sync.plan.completeness import Facts, Rules, Wait
from gcs_model_sync.plan.pins import Hold
from gcs_model_sync.plan.versions import RemoteVersion


@dataclass(frozen=True, slots=True)
class Install:
    version: RemoteVersion
    reason: str  # "new", "changed", "missing locally", "replaces unmanaged"

    @property
    def replaces(self) -> bool:
        return self.reason in ("changed", "replaces unmanaged")


@dataclass(frozen=True, slots=True)
class Prune:
    managed: Managed
    reason: str


@dataclass(frozen=True, slots=True)
class Waiting:
    """A version in the bucket not installed (or not replaced) yet: its upload is not done."""

    version: RemoteVersion
    kind: Wait
    reason: str
    installed: bool  # an installed folder stays as it is meanwhile

    @property
    def id(self) -> str:
        return self.version.id


def waits(
    versions: list[RemoteVersion], local: LocalView, rules: Rules, facts: Facts | None
) -> dict[str, Waiting]:
    """Folder versions whose upload (or delete) is still in progress, by version id."""
    out = {}
    for v in versions:
        if v.form is not Form.FOLDER:
            continue
        have = local.managed.get(v.id)
        installed = have is not None and v.id in local.on_disk
        if installed and have is not None and have.fingerprint == v.fingerprint:
            continue  # in sync: nothing to wait for
        if installed and have is not None and (why := completeness.shrunk(v.entries, have.objects)):
            out[v.id] = Waiting(v, Wait.SHRUNK, why, installed)
        elif found := completeness.waiting(v.entries, rules, facts):
            out[v.id] = Waiting(v, found[0], found[1], installed)
    return out


def sort(
    versions: list[RemoteVersion],
    local: LocalView,
    waits: dict[str, Waiting],
    wanted: set[str],
    wanted_once_ready: set[str],
) -> tuple[list[Install], list[str], list[str], list[Waiting]]:
    """Each listed version: (to install, in sync, outside --keep, waiting)."""
    installs: list[Install] = []
    in_sync, outside_keep, waiting = [], [], []
    for v in sorted(versions, key=lambda v: (v.model, v.number)):
        w = waits.get(v.id)
        if w is not None and v.id in (
            wanted if w.installed or w.kind is Wait.UNREAD else wanted_once_ready
        ):
            waiting.append(w)
            continue
        if v.id not in wanted:
            outside_keep.append(v.id)
            continue
        have = local.managed.get(v.id)
        present = v.id in local.on_disk
        if have and present and have.fingerprint == v.fingerprint:
            in_sync.append(v.id)
        elif have and present:
            installs.append(Install(v, "changed"))
        elif present:
            installs.append(Install(v, "replaces unmanaged"))
        else:
            installs.append(Install(v, "missing locally" if have else "new"))
    return installs, in_sync, outside_keep, waiting


def prunes(
    local: LocalView,
    remote_ids: set[str],
    wanted: set[str],
    keep: int,
    held: Mapping[str, Hold],
) -> tuple[list[Prune], list[str], list[str]]:
    """Managed versions to prune, state entries to forget (their folder is gone), and
    versions gone from the bucket that a pin or an alias keeps."""
    prunes, forget, kept = [], [], []
    for vid, m in sorted(local.managed.items()):
        hold = held.get(m.model)
        if vid not in local.on_disk:
            if vid not in remote_ids or vid not in wanted:
                forget.append(vid)
            continue
        if hold is not None and int(m.version) in hold.kept:
            if vid not in remote_ids:
                kept.append(vid)
            continue
        if vid not in remote_ids:
            prunes.append(Prune(m, "removed from the bucket"))
        elif vid not in wanted:
            pin = hold.pin if hold is not None else None
            if pin is not None and int(m.version) > pin:
                why = f"newer than --pin {m.model or '.'}={pin}"
            else:
                why = f"outside --keep {keep}"
            prunes.append(Prune(m, why))
    return prunes, forget, kept
