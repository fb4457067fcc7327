"""Build model versions in the formats training jobs push: zip, tar(.gz), or a folder of objects."""

from __future__ import annotations

import io
import random
import tarfile
import zipfile
from collections.abc import Mapping

Files = Mapping[str, bytes]


def sample_files(tag: str = "v", size: int = 64) -> dict[str, bytes]:
    """A tiny SavedModel-shaped tree whose bytes depend on `tag`, so versions differ."""
    body = (tag.encode() * (size // max(len(tag), 1) + 1))[:size]
    return {
        "saved_model.pb": b"pb:" + body,
        "variables/variables.index": b"idx:" + body,
        "variables/variables.data-00000-of-00001": b"data:" + body,
    }


def make_zip(files: Files, top: str | None = None) -> bytes:
    """A zip of `files`; with `top`, every entry sits under `top/` as the seed's zips do."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if top:
            zf.writestr(f"{top}/", b"")
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return buf.getvalue()


class _Pipe(io.RawIOBase):
    """What zipfile sees when it writes to a pipe: not seekable, so it adds data descriptors."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        return self.buf.write(b)


def make_piped_zip(
    files: Files, top: str | None = None, compression: int = zipfile.ZIP_STORED
) -> bytes:
    """A zip written to a pipe: members end with data descriptors. Stored ones cannot be
    extracted while they stream (gcs-model-sync spools such a zip to disk first)."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression) as zf:  # type: ignore[arg-type]
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return pipe.buf.getvalue()


def make_tar(files: Files, top: str | None = None, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def big_files(tag: str, size: int = 2 * 1024 * 1024) -> dict[str, bytes]:
    """A version large enough that a pass takes a while through a slowed proxy."""
    rng = random.Random(tag)
    files = sample_files(tag)
    files["variables/variables.data-00000-of-00001"] = rng.randbytes(size)
    return files
