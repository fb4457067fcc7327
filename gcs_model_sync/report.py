"""What a pass did: published, pruned, and each failure with its kind."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gcs_model_sync.errors import exit_code, os_error
from gcs_model_sync.failures import Failure, FailureKind, classify
from gcs_model_sync.local.state import PENDING
from gcs_model_sync.logs import event
from gcs_model_sync.plan.actions import Install
from gcs_model_sync.plan.pins import Problem
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.plan.versions import Rejection

__all__ = [
    "Failure",
    "FailureKind",
    "Report",
    "install_state",
    "known_failures",
    "local_failure",
    "published_as",
    "rejected",
]


def rejected(r: Rejection | Problem) -> Failure:
    """A version the plan refused, or a model whose pin or aliases it cannot follow: a content
    failure known before any install (its model's deletions wait)."""
    if isinstance(r, Problem):
        return Failure(r.model, None, r.message, FailureKind.CONTENT)
    return Failure(r.model, r.id, r.message, FailureKind.CONTENT)


def known_failures(plan: Plan) -> list[Failure]:
    """The failures a plan knows of before any install."""
    return [rejected(r) for r in plan.rejections] + [rejected(p) for p in plan.problems]


@dataclass
class Report:
    plan: Plan | None = None
    published: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    guard: str | None = None
    # Version folders on disk after the pass (of the models listed or installed by us), the
    # hand-made ones included: what a server would serve. None when the listing failed.
    on_disk: frozenset[str] | None = None
    files_written: list[str] = field(default_factory=list)  # --model-files, "model/name"
    files_removed: list[str] = field(default_factory=list)
    # --verify: each run's outcome, and the versions it refused: id -> (fingerprint, message)
    verify_runs: list[str] = field(default_factory=list)
    refusals: dict[str, tuple[str, str]] = field(default_factory=dict)
    # --server: model -> the newest version the server serves (None: none), as last asked
    served: dict[str, int | None] = field(default_factory=dict)
    bytes_downloaded: int = 0
    list_requests: int = 0
    object_reads: int = 0
    peak_connections: int = 0  # the most responses open at once (within --connections)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.published or self.pruned or self.files_written or self.files_removed)

    @property
    def exit_code(self) -> int:
        return exit_code(guarded=bool(self.guard), failed=bool(self.failures))

    @property
    def outcome(self) -> str:
        if self.failures or self.guard:
            return "error"
        return "success" if self.changed else "noop"

    def fail(self, kind: FailureKind, model: str | None, vid: str | None, message: str) -> None:
        self.failures.append(Failure(model, vid, message, kind))


def local_failure(report: Report, exc: OSError, model: str, vid: str, what: str) -> None:
    """The destination refused something (a full disk, a read-only file system): `what`
    failed, said with the file system's words."""
    message = f"{what}: {os_error(exc)}"
    report.fail(classify(exc), model, vid, message)
    event(logging.ERROR, "local_failure", message)


def install_state(install: Install, fingerprint: str | None, resume_bytes: int) -> str:
    """What a pending install is, in the words `status`, `plan` and the log share: `replace`
    (a new upload of an installed version, or a folder we did not install), `resuming` (a
    download cut short left bytes that are kept), `reinstall` (ours, but its folder is gone),
    or `new` (never installed, an install cut short before anything was kept included).
    `fingerprint` is what the state file records for it."""
    if install.replaces:
        return "replace"
    if resume_bytes:
        return "resuming"
    if install.reason == "missing locally" and fingerprint not in (None, PENDING):
        return "reinstall"
    return "new"


_PUBLISHED_AS = {
    "new": "new",
    "resuming": "resumed",
    "replace": "replaced",
    "reinstall": "reinstalled",
}


def published_as(state: str) -> str:
    """How the `published` line says an install of this state (install_state()) went."""
    return _PUBLISHED_AS[state]
