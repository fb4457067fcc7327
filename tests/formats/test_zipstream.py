"""Zips extracted while they stream: what only the streaming reader has to get right."""

from __future__ import annotations

import io
import random
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats import zipstream
from gcs_model_sync.formats.extract import Limits, Writer, content_root
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


# --- data descriptors: 4-byte or 8-byte sizes, whatever the local header says ------------------


def crafted(
    files: dict[str, bytes],
    *,
    wide: bool,
    signature: bool = True,
    lie: tuple[int, int] = (0, 0),
    central_zip64: bool = False,
    central_lie: int = 0,
) -> bytes:
    """Deflated members with data descriptors and no zip64 extra in their local headers, as
    Go's archive/zip and Java write them: `wide` descriptors carry 8-byte sizes (what those
    writers do after a member over 4 GiB). `lie` adds to the descriptor's (compressed,
    uncompressed) sizes; `central_zip64` gives the central directory's sizes in a zip64 extra
    field, and `central_lie` adds to the uncompressed size the central directory records."""
    out, central = bytearray(), bytearray()
    for name, data in files.items():
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = co.compress(data) + co.flush()
        crc, raw = zlib.crc32(data), name.encode()
        offset = len(out)
        out += struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0x8, 8, 0, 0x21, 0, 0, 0, len(raw), 0
        )
        out += raw + packed
        csize, usize = len(packed) + lie[0], len(data) + lie[1]
        out += b"PK\x07\x08" if signature else b""
        out += struct.pack("<IQQ" if wide else "<III", crc, csize, usize)
        extra = b""
        csize, usize = len(packed), len(data) + central_lie
        if central_zip64:
            extra = struct.pack("<HHQQ", 1, 16, usize, csize)
            csize = usize = 0xFFFFFFFF
        attr = (stat.S_IFREG | 0o644) << 16
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 3 << 8 | 45, 20, 0x8, 8, 0, 0x21, crc,
            csize, usize, len(raw), len(extra), 0, 0, 0, attr, offset,
        )  # fmt: skip
        central += raw + extra
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(files), len(files), len(central), len(out), 0
    )
    return bytes(out + central + end)


DESCRIBED = {
    "saved_model.pb": b"pb" * 100,
    "empty": b"",
    "variables/v.data": FILES["variables/v.data"],
}


@pytest.mark.parametrize("signature", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("wide", [False, True], ids=["4-byte-sizes", "8-byte-sizes"])
def test_data_descriptors_of_either_width_are_read(
    tmp_path: Path, wide: bool, signature: bool
) -> None:
    data = crafted(DESCRIBED, wide=wide, signature=signature)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # a valid zip to a seekable reader too
        assert {n: zf.read(n) for n in zf.namelist()} == DESCRIBED
    assert extract(tmp_path, data) == DESCRIBED


@pytest.mark.parametrize("signature", [True, False], ids=["signed", "unsigned"])
def test_a_wide_descriptor_that_also_parses_narrow_is_told_apart_by_what_follows(
    tmp_path: Path, signature: bool
) -> None:
    """An empty member's 8-byte sizes (2, 0) read as 4-byte ones are (2, 0) too, followed by
    eight zero bytes: only the wide reading is followed by the next header."""
    files = {"empty": b"", "saved_model.pb": b"pb"}
    assert extract(tmp_path, crafted(files, wide=True, signature=signature)) == files


@pytest.mark.parametrize(
    ("wide", "lie"),
    [(False, (1, 0)), (False, (0, 1)), (True, (1, 0)), (True, (0, 1)), (True, (1 << 32, 0))],
    ids=["4-byte-compressed", "4-byte-size", "8-byte-compressed", "8-byte-size", "8-byte-4G-off"],
)
def test_a_data_descriptor_whose_sizes_match_neither_width_is_rejected(
    tmp_path: Path, wide: bool, lie: tuple[int, int]
) -> None:
    data = crafted({"variables/v.data": b"v" * 1000}, wide=wide, lie=lie)
    with pytest.raises(VersionRejected) as info:
        extract(tmp_path, data)
    message = str(info.value)
    assert message.startswith(f"{WHERE}: member 'variables/v.data'"), message
    assert "data descriptor" in message
    assert "\n" not in message


def test_zip64_data_descriptor_after_a_zip64_local_header_is_read(tmp_path: Path) -> None:
    """What Python's zipfile writes to a pipe with force_zip64: both sizes in the local zip64
    extra are zero, the real ones follow the member in an 8-byte descriptor."""
    pipe = io.BytesIO()

    class Pipe(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            return pipe.write(b)

    with zipfile.ZipFile(Pipe(), "w", zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for name, body in DESCRIBED.items():
            with zf.open(name, "w", force_zip64=True) as out:
                out.write(body)
    assert extract(tmp_path, pipe.getvalue()) == DESCRIBED


def test_central_directory_sizes_in_a_zip64_extra_are_cross_checked(tmp_path: Path) -> None:
    good = crafted(DESCRIBED, wide=True, central_zip64=True)
    assert extract(tmp_path / "good", good) == DESCRIBED
    for central_zip64 in (False, True):
        bad = crafted(DESCRIBED, wide=True, central_zip64=central_zip64, central_lie=1)
        with pytest.raises(VersionRejected, match="central directory does not match"):
            extract(tmp_path / f"bad-{central_zip64}", bad)


def test_an_executable_mode_is_never_set_through_a_link(tmp_path: Path) -> None:
    """`s -> .` and `t -> s/..` (the root's parent), then `t` listed again as an executable:
    the version is rejected for the link, and the mode of what `t` reaches is left alone."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, target in (("s", b"."), ("t", b"s/..")):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    data = buf.getvalue()
    start, end = data.rfind(zipstream.CENTRAL), data.rfind(b"PK\x05\x06")
    again = bytearray(data[start:end])  # t's entry, once more, as an executable file
    again[38:42] = struct.pack("<I", (stat.S_IFREG | 0o755) << 16)
    tail = bytearray(data[end:])
    tail[8:16] = struct.pack("<HHI", 3, 3, end - data.find(zipstream.CENTRAL) + len(again))
    tmp_path.chmod(0o700)
    writer = Writer(tmp_path / "tree", Limits(10**6, WHERE))
    zipstream.extract(io.BytesIO(data[:end] + again + tail), writer, WHERE)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    with pytest.raises(VersionRejected, match="leaves the version folder"):
        content_root(tmp_path / "tree", WHERE, "1")
