"""Pure: the model-level files (`--model-files`) to write, remove, or leave alone. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from gcs_model_sync.layout import ModelFile, RemoteObject
from gcs_model_sync.local.scan import LocalView


@dataclass(frozen=True, slots=True)
class FileChange:
    """A model-level file (`--model-files`) to write, or to remove when `obj` is None."""

    model: str
    name: str
    obj: RemoteObject | None
    reason: str

    @property
    def id(self) -> str:
        return f"{self.model}/{self.name}"

    @property
    def removes(self) -> bool:
        return self.obj is None


def plan_files(
    files: list[ModelFile] | None, local: LocalView, models: frozenset[str]
) -> tuple[tuple[FileChange, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Model-level files: (changes, in sync, left alone, forgotten). Without --model-files
    (None) nothing: files written earlier stay, and stay ours."""
    if files is None:
        return (), (), (), ()
    remote = {f.id: f for f in files}
    changes, in_sync, left, forget = [], [], [], []
    for fid, f in sorted(remote.items()):
        have = local.files.get(fid)
        present = fid in local.entries
        if have and present and have.generation == f.obj.generation:
            in_sync.append(fid)
        elif present and not have:
            left.append(fid)  # hand-made, or another tool's: never touched
        else:
            reason = "changed" if have and present else "missing locally" if have else "new"
            changes.append(FileChange(f.model, f.name, f.obj, reason))
    for fid, have in sorted(local.files.items()):
        if fid in remote:
            continue
        if fid not in local.entries:
            forget.append(fid)
            continue
        gone = "removed from the bucket" if have.model in models else "its model left the bucket"
        changes.append(FileChange(have.model, have.name, None, gone))
    return tuple(changes), tuple(in_sync), tuple(left), tuple(forget)
