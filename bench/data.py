"""Generate model versions of random bytes, laid out as fake-gcs-server's `-data` loads them.

Keys are `PREFIX/model{m}/{NNNN}.zip` (or `.tar.gz`), or `PREFIX/model{m}/{NNNN}/...` for the
folder form. Archives hold the `NNNN/` folder itself, as the seed's zips do. They are written
with deflate level 0: on random data every deflate level emits stored blocks anyway, so the
archives are the same kind a real `zip -r` or `tar czf` makes, built at disk speed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

Form = Literal["zip", "tgz", "folder"]
SUFFIX: dict[Form, str] = {"zip": ".zip", "tgz": ".tar.gz", "folder": ""}
CHUNK = 4 << 20
MTIME = 1_700_000_000


class FileSpec(NamedTuple):
    """One file of a version folder: its path inside `NNNN/` and its size in bytes."""

    name: str
    size: int


class Dataset(NamedTuple):
    """What was generated, and the sha256 of every file a correct tool must produce."""

    bucket: str
    prefix: str
    form: Form
    models: int
    versions: int  # in all models together
    payload_bytes: int  # bytes of the version folders once extracted
    objects: dict[str, str]  # key below PREFIX/ -> sha256: what a plain copy must produce
    published: dict[str, str]  # model/NNNN/file -> sha256: what a sync tool must publish

    @property
    def source(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"


def saved_model(big: int, shards: int = 1, small: int = 256 << 10) -> list[FileSpec]:
    """A SavedModel-shaped folder: small graph and index, `big` bytes of variables in shards."""
    each = max(big // shards, 1)
    data = [
        FileSpec(f"variables/variables.data-{i:05d}-of-{shards:05d}", each) for i in range(shards)
    ]
    return [
        FileSpec("saved_model.pb", small),
        FileSpec("variables/variables.index", 16 << 10),
        *data,
    ]


def tiny_model() -> list[FileSpec]:
    """A few hundred bytes in three files, for the no-op workload."""
    return [
        FileSpec("saved_model.pb", 64),
        FileSpec("variables/variables.index", 32),
        FileSpec("variables/variables.data-00000-of-00001", 128),
    ]


class _RandomReader(io.RawIOBase):
    """`size` random bytes read like a file, hashed as they are handed out."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        chunk = os.urandom(n)
        self.sha.update(chunk)
        self.left -= n
        return chunk


def _chunks(size: int) -> Iterator[int]:
    while size > 0:
        yield min(size, CHUNK)
        size -= CHUNK


def _write_zip(path: Path, top: str, files: list[FileSpec]) -> dict[str, str]:
    sums: dict[str, str] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=0) as zf:
        for folder in sorted({top, *(f"{top}/{Path(f.name).parent}" for f in files)}):
            if not folder.endswith("/."):
                zf.mkdir(folder)
        for spec in files:
            info = zipfile.ZipInfo(f"{top}/{spec.name}", (2023, 11, 14, 22, 13, 20))
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 0  # type: ignore[attr-defined]  # ZipInfo's level wins in open()
            info.external_attr = 0o644 << 16
            info.file_size = spec.size
            reader = _RandomReader(spec.size)
            with zf.open(info, "w") as out:
                for n in _chunks(spec.size):
                    out.write(reader.read(n))
            sums[spec.name] = reader.sha.hexdigest()
    return sums


def _write_tgz(path: Path, top: str, files: list[FileSpec]) -> dict[str, str]:
    sums: dict[str, str] = {}
    with (
        gzip.open(path, "wb", compresslevel=0) as gz,
        tarfile.TarFile(fileobj=gz, mode="w", copybufsize=CHUNK) as tf,
    ):
        for folder in sorted({top, *(f"{top}/{Path(f.name).parent}" for f in files)}):
            if not folder.endswith("/."):
                info = tarfile.TarInfo(folder)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
                tf.addfile(info)
        for spec in files:
            info = tarfile.TarInfo(f"{top}/{spec.name}")
            info.size, info.mode, info.mtime = spec.size, 0o644, MTIME
            reader = _RandomReader(spec.size)
            tf.addfile(info, reader)
            sums[spec.name] = reader.sha.hexdigest()
    return sums


def _write_folder(root: Path, files: list[FileSpec]) -> dict[str, str]:
    sums: dict[str, str] = {}
    for spec in files:
        path = root / spec.name
        path.parent.mkdir(parents=True, exist_ok=True)
        reader = _RandomReader(spec.size)
        with open(path, "wb") as out:
            for n in _chunks(spec.size):
                out.write(reader.read(n))
        sums[spec.name] = reader.sha.hexdigest()
    return sums


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def generate(
    data_dir: Path,
    bucket: str,
    prefix: str,
    form: Form,
    models: int,
    versions_per_model: int,
    files: list[FileSpec],
) -> Dataset:
    """Write `models` x `versions_per_model` versions under `data_dir/bucket/prefix/`."""
    base = data_dir / bucket / prefix
    jobs = [(m, v) for m in range(models) for v in range(1, versions_per_model + 1)]

    def one(job: tuple[int, int]) -> tuple[dict[str, str], dict[str, str], int]:
        m, v = job
        model, version = f"model{m:0{len(str(models - 1))}d}", f"{v:04d}"
        (base / model).mkdir(parents=True, exist_ok=True)
        key = f"{model}/{version}{SUFFIX[form]}"
        if form == "zip":
            sums = _write_zip(base / key, version, files)
        elif form == "tgz":
            sums = _write_tgz(base / key, version, files)
        else:
            sums = _write_folder(base / key, files)
        published = {f"{model}/{version}/{name}": sha for name, sha in sums.items()}
        if form == "folder":
            objects = {f"{key}/{name}": sha for name, sha in sums.items()}
        else:
            objects = {key: sha256_file(base / key)}
        return objects, published, sum(f.size for f in files)

    objects: dict[str, str] = {}
    published: dict[str, str] = {}
    payload = 0
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        for obj, pub, size in pool.map(one, jobs):
            objects.update(obj)
            published.update(pub)
            payload += size
    return Dataset(bucket, prefix, form, models, len(jobs), payload, objects, published)
