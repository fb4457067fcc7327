"""Zips extracted while they stream: what only the streaming reader has to get right."""

from __future__ import annotations

import io
import random
import stat
import zipfile
from pathlib import Path

import pytest

from gcs_model_sync import zipstream
from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.extract import Limits, Writer
from tests.support.models import make_piped_zip

WHERE = "gs://b/m/1.zip"
FILES = {"saved_model.pb": b"pb" * 100, "variables/v.data": random.Random(1).randbytes(300_000)}


def build(compression: int, streamed: bool, files: dict[str, bytes] = FILES) -> bytes:
    if streamed:
        return make_piped_zip(files, compression=compression)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def extract(tmp_path: Path, data: bytes) -> dict[str, bytes]:
    root = tmp_path / "tree"
    zipstream.extract(io.BytesIO(data), Writer(root, Limits(10**8, WHERE)), WHERE)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("streamed", [False, True], ids=["sizes-in-header", "data-descriptor"])
def test_deflated_zips_stream_byte_exact(tmp_path: Path, streamed: bool) -> None:
    data = build(zipfile.ZIP_DEFLATED, streamed)
    if streamed:
        assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x8
    assert extract(tmp_path, data) == FILES


def test_stored_zip_with_sizes_streams(tmp_path: Path) -> None:
    assert extract(tmp_path, build(zipfile.ZIP_STORED, streamed=False)) == FILES


@pytest.mark.parametrize(
    ("compression", "streamed"),
    [(zipfile.ZIP_STORED, True), (zipfile.ZIP_BZIP2, False), (zipfile.ZIP_LZMA, False)],
    ids=["stored-with-descriptor", "bzip2", "lzma"],
)
def test_zips_that_need_random_access_ask_for_the_fallback(
    tmp_path: Path, compression: int, streamed: bool
) -> None:
    with pytest.raises(zipstream.Unstreamable):
        extract(tmp_path, build(compression, streamed))


def test_a_prefixed_zip_asks_for_the_fallback(tmp_path: Path) -> None:
    with pytest.raises(zipstream.Unstreamable):
        extract(tmp_path, b"#!/bin/sh\nexit 0\n" + build(zipfile.ZIP_DEFLATED, False))


def test_central_directory_that_disagrees_is_rejected(tmp_path: Path) -> None:
    data = bytearray(build(zipfile.ZIP_DEFLATED, False))
    central = data.find(zipstream.CENTRAL)
    data[central + 16] ^= 0xFF  # the first entry's CRC-32 in the central directory only
    with pytest.raises(VersionRejected, match="central directory does not match"):
        extract(tmp_path, bytes(data))


def test_damaged_member_fails_its_crc(tmp_path: Path) -> None:
    data = bytearray(build(zipfile.ZIP_STORED, False, {"a": b"x" * 1000}))
    data[100] ^= 0x01
    with pytest.raises(VersionRejected, match="CRC-32"):
        extract(tmp_path, bytes(data))


def test_a_folder_the_central_directory_calls_a_link_is_rejected(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("x/")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"")
    with pytest.raises(VersionRejected, match="link 'x' is not a file"):
        extract(tmp_path, buf.getvalue())


def test_links_recorded_in_the_central_directory_become_links(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("v/data", b"payload")
        info = zipfile.ZipInfo("latest")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"v/data")
    extract(tmp_path, buf.getvalue())
    link = tmp_path / "tree" / "latest"
    assert link.is_symlink()
    assert link.read_bytes() == b"payload"


def test_truncated_stream_is_rejected(tmp_path: Path) -> None:
    data = build(zipfile.ZIP_DEFLATED, True)
    with pytest.raises(VersionRejected):
        extract(tmp_path, data[: len(data) // 2])
