"""No write, rename or delete below DEST goes through a symbolic link.

Whoever can write DEST (another container on the volume, a hand-made `ln -s`) could point
`DEST/m`, `DEST/m/3` or `DEST/.gcs-model-sync/trash` elsewhere, and a prune or a cleanup would
then move or delete what lies there. So every path this tool changes is checked first: no
component between DEST and it may be a link. DEST itself may be one (a mount made that
way): it is what the user named, and it is followed like any other path they give.

The check is lstat() of each component just before the change. It stops links that are
there when a pass acts (put there before it, or between passes); someone racing the pass
with renames inside DEST between the check and the change is not stopped, but can already
make the model server load anything.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from gcs_model_sync.errors import SyncError

NOT_FOLLOWED = "a symbolic link below --dest; not followed"


class LinkRefused(OSError):
    """A change below DEST would go through a symbolic link. An OSError, so that whatever
    reports a destination that refused (a failed publish, prune or model file) says it in one
    line naming the link."""

    def __init__(self, link: Path) -> None:
        super().__init__(errno.ELOOP, NOT_FOLLOWED, str(link))
        self.link = link


class OwnFolderLinked(SyncError):
    """A folder or file of the tool's own (staging, trash, partial, the state file, the lock)
    is a symbolic link: the whole pass is refused, nothing written or deleted through it."""

    def __init__(self, link: Path) -> None:
        super().__init__(
            f"{link}: a symbolic link where gcs-model-sync keeps its own files; not followed, "
            "nothing written or deleted (remove the link; the next pass makes its own)"
        )
        self.link = link


def first_link(dest: Path, path: Path) -> Path | None:
    """The first component of `path` below `dest` that is a symbolic link, `path` itself
    included; None when there is none. A component that does not exist ends the walk:
    whatever is made below it is made by us."""
    parts = path.relative_to(dest).parts  # ValueError: not below DEST, a caller's bug
    here = dest
    for part in parts:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(mode):
            return here
    return None


def check(dest: Path, path: Path) -> None:
    """Raise LinkRefused when `path`, or a folder between `dest` and it, is a symbolic link."""
    if (link := first_link(dest, path)) is not None:
        raise LinkRefused(link)


def check_parent(dest: Path, path: Path) -> None:
    """For a change of `path`'s own entry (a rename, an unlink, a link() that never follows
    its last component): only the folders between `dest` and it must not be links."""
    if path.parent != dest:
        check(dest, path.parent)


def check_own(dest: Path, paths: Iterable[Path]) -> None:
    """The tool's own folders and files: OwnFolderLinked, a refusal of the pass, if any is
    (or sits below) a symbolic link."""
    for p in paths:
        if (link := first_link(dest, p)) is not None:
            raise OwnFolderLinked(link)


def linked(dest: Path, rel: str) -> Path | None:
    """The first link along DEST/<rel> (a model path, or a version id), or None."""
    return first_link(dest, dest / rel) if rel else None
