"""Where things live under DEST: the version folders and the tool's own folders."""

from __future__ import annotations

from pathlib import Path

from gcs_model_sync.diskio import DIR_MODE, set_mode
from gcs_model_sync.layout import STATE_DIR, version_id
from gcs_model_sync.local import safepath


class Paths:
    """Where things live under DEST. Scratch space sits beside the versions: same filesystem."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.state_dir = dest / STATE_DIR
        self.state_file = self.state_dir / "state.json"
        self.lock_file = self.state_dir / "lock"
        self.staging = self.state_dir / "staging"
        self.partial = self.state_dir / "partial"  # resumable downloads: kept across passes
        self.trash = self.state_dir / "trash"

    def version_dir(self, model: str, version: str) -> Path:
        return self.dest / version_id(model, version)

    @property
    def own(self) -> tuple[Path, ...]:
        """What the tool keeps under DEST: never reached through a symbolic link."""
        return (
            self.state_dir, self.staging, self.trash, self.partial, self.state_file,
            self.lock_file,
        )  # fmt: skip

    def ensure(self) -> None:
        """Make DEST and the tool's folders; OwnFolderLinked when one of them is a link."""
        make_dirs(self.dest)
        safepath.check_own(self.dest, self.own)
        for d in (self.state_dir, self.staging, self.trash, self.partial):
            d.mkdir(exist_ok=True)  # ours alone: the umask may keep others out


def make_dirs(path: Path) -> None:
    """`mkdir -p` whose new folders are 0755 whatever the umask, so that a model server
    running as another user can reach the versions; existing folders keep their mode."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        set_mode(d, DIR_MODE)
