"""Which files of a version the Writer writes: the filters' choice (archive members), and
--refuse-pickle's refusal, judged by name and, for a `.bin`, by its first bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats import pickles
from gcs_model_sync.formats.stream import Chunks


class _Replay:
    """`src` with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, src: Chunks) -> None:
        self.head, self.src = head, src

    def read(self, size: int = -1, /) -> bytes | memoryview:
        if self.head:
            head, self.head = self.head, b""
            return head
        return self.src.read(size)


def _head(src: Chunks) -> bytes:
    got = b""
    while len(got) < pickles.HEAD and (chunk := src.read(pickles.HEAD - len(got))):
        got += bytes(chunk)
    return got


class Members:
    """`keep(rel)` says whether a file is written (None: every one); `refuse_pickle` raises
    VersionRejected naming `where` and the file."""

    def __init__(self, keep: Callable[[str], bool] | None, refuse_pickle: bool) -> None:
        self.keep, self.refuse_pickle = keep, refuse_pickle

    def wanted(self, rel: str) -> bool:
        return self.keep is None or self.keep(rel)

    def checked(self, rel: str, src: Chunks, where: str) -> Chunks:
        """`src` to copy from, once its name and first bytes pass."""
        if not self.refuse_pickle:
            return src
        if pickles.named(rel):
            raise VersionRejected(f"{where}: {pickles.why(rel)}")
        if not pickles.sniffed(rel):
            return src
        head = _head(src)
        if pickles.pickled(head):
            raise VersionRejected(f"{where}: {pickles.why(rel)}")
        return _Replay(head, src)

    def check_file(self, rel: str, path: Path, where: str) -> None:
        """The same for a file already on disk (a download by ranges)."""
        with open(path, "rb") as f:
            self.checked(rel, f, where)
