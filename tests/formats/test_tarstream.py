"""The streaming tar reader: what tarfile's stream mode used to do for us and now we do.

Safety (paths, links, specials, limits) is shared with every form and tested in
formats/test_extract.py; here: every header format, extended headers, and chunk boundaries anywhere.
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats import tarstream
from gcs_model_sync.formats.extract import Limits, Writer

WHERE = "gs://b/m/0001.tar.gz"
Format = Literal[0, 1, 2]
FORMATS: dict[str, Format] = {
    "gnu": tarfile.GNU_FORMAT,
    "pax": tarfile.PAX_FORMAT,
    "ustar": tarfile.USTAR_FORMAT,
}


class Trickle(io.RawIOBase):
    """Hands the archive out in reads of the given sizes, in turn: headers and member bytes
    then straddle chunk boundaries at every offset a test asks for."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.pos, self.turn = data, sizes or [1 << 20], 0, 0

    def read(self, size: int = -1, /) -> bytes:
        step = min(self.sizes[self.turn % len(self.sizes)], size if size > 0 else 1 << 30)
        self.turn += 1
        chunk = self.data[self.pos : self.pos + step]
        self.pos += len(chunk)
        return chunk


def tar(files: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT, links: dict[str, str] | None = None,
        gz: bool = False) -> bytes:  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=fmt) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def raw_member(info: tarfile.TarInfo, data: bytes = b"", fmt: Format = tarfile.PAX_FORMAT) -> bytes:
    """One member as it sits in the archive, headers as given (no sanity added by tarfile)."""
    pad = -len(data) % tarfile.BLOCKSIZE
    return info.tobuf(fmt, "utf-8", "surrogateescape") + data + bytes(pad)


END = bytes(2 * tarfile.BLOCKSIZE)


def extract(tmp_path: Path, data: bytes, sizes: list[int] | None = None, gz: bool = False) -> Path:
    root = tmp_path / "tree"
    tarstream.extract(Trickle(data, sizes or []), Writer(root, Limits(1 << 30, WHERE)), WHERE, gz)
    return root


def reject(tmp_path: Path, data: bytes) -> str:
    with pytest.raises(VersionRejected) as info:
        extract(tmp_path, data)
    message = str(info.value)
    assert message.startswith(WHERE + ":"), message
    return message


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


names = st.lists(st.text(alphabet="abcdé_-", min_size=1, max_size=40), min_size=1, max_size=6).map(
    "/".join
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.dictionaries(names, st.binary(max_size=3000), min_size=1, max_size=5),
    fmt=st.sampled_from(sorted(FORMATS)),
    sizes=st.lists(st.integers(1, 1500), min_size=1, max_size=4),
    gz=st.booleans(),
)
def test_any_format_and_any_chunking_give_the_same_tree(
    tmp_path_factory: pytest.TempPathFactory,
    files: dict[str, bytes],
    fmt: str,
    sizes: list[int],
    gz: bool,
) -> None:
    # a file may not also be the folder of another
    files = {n: d for n, d in files.items() if not any(o.startswith(n + "/") for o in files)}
    if fmt == "ustar" and any(len(n.encode()) > 100 for n in files):
        return  # ustar cannot hold these names; tarfile refuses to write them
    data = tar(files, FORMATS[fmt], gz=gz)
    root = extract(tmp_path_factory.mktemp("x"), data, sizes, gz)
    assert files_under(root) == files


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_long_names_and_long_link_targets_are_applied(tmp_path: Path, fmt: str) -> None:
    deep = "/".join(["folder-with-a-long-name"] * 12) + "/weights.bin"  # ~290 bytes
    target = deep
    data = tar({deep: b"w" * 1000}, FORMATS[fmt], links={"latest": target})
    root = extract(tmp_path, data, [700])
    assert (root / deep).read_bytes() == b"w" * 1000
    assert (root / "latest").readlink().as_posix() == target


def test_pax_size_overrides_the_header_size(tmp_path: Path) -> None:
    """Members over 8 GiB carry their size in a pax record; the ustar field says 0."""
    info = tarfile.TarInfo("big.bin")
    info.size = 0
    info.pax_headers = {"size": "5"}
    data = raw_member(info, b"hello") + raw_member(tarfile.TarInfo("after.txt")) + END
    root = extract(tmp_path, data)
    assert files_under(root) == {"big.bin": b"hello", "after.txt": b""}


def pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    n = len(body) + 1
    n += len(str(n)) - 1
    return str(n).encode() + body


def test_git_archive_global_header_is_accepted(tmp_path: Path) -> None:
    """`git archive` starts with a pax global header carrying the commit id."""
    glob = tarfile.TarInfo("pax_global_header")
    glob.type = tarfile.XGLTYPE
    records = pax_record("comment", "0c2a7e5d9f3b1a4c6e8d0f2b4a6c8e0d2f4b6a8c")
    assert records.startswith(b"52 ")
    glob.size = len(records)
    data = raw_member(glob, records, tarfile.USTAR_FORMAT) + tar({"a": b"1"})
    assert files_under(extract(tmp_path, data)) == {"a": b"1"}


def test_a_pax_header_applies_to_the_next_member_only(tmp_path: Path) -> None:
    first = tarfile.TarInfo("short")
    first.size = 1
    first.pax_headers = {"path": "renamed"}
    second = tarfile.TarInfo("second")
    second.size = 1
    data = raw_member(first, b"1") + raw_member(second, b"2", tarfile.USTAR_FORMAT) + END
    assert files_under(extract(tmp_path, data)) == {"renamed": b"1", "second": b"2"}


def test_the_archive_root_entry_is_skipped_with_its_data(tmp_path: Path) -> None:
    dot = tarfile.TarInfo("./")
    dot.size = 600  # a regular file named like the root: its bytes must not be read as headers
    data = raw_member(dot, b"\x01" * 600) + tar({"a": b"1"})
    assert files_under(extract(tmp_path, data, [100])) == {"a": b"1"}


def test_gnu_sparse_members_are_rejected(tmp_path: Path) -> None:
    info = tarfile.TarInfo("holes")
    info.type = tarfile.GNUTYPE_SPARSE
    assert "sparse" in reject(tmp_path, raw_member(info, fmt=tarfile.GNU_FORMAT) + END)


def test_pax_sparse_members_are_rejected(tmp_path: Path) -> None:
    info = tarfile.TarInfo("holes")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    assert "sparse" in reject(tmp_path, raw_member(info) + END)


def test_an_oversized_long_name_is_rejected_before_it_is_read(tmp_path: Path) -> None:
    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = tarstream.META_LIMIT + 1
    header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    assert "too large" in reject(tmp_path, header)  # no data follows: it was never read


@pytest.mark.parametrize(
    "records",
    [b"x", b"99 path=a\n", b"7 path\n", b"10 path=ab", b"-5 a=b\n", b"abc path=a\n"],
)
def test_corrupt_pax_records_are_rejected(tmp_path: Path, records: bytes) -> None:
    info = tarfile.TarInfo("pax")
    info.type, info.size = tarfile.XHDTYPE, len(records)
    data = raw_member(info, records, tarfile.USTAR_FORMAT) + tar({"a": b"1"})
    assert "corrupt pax header" in reject(tmp_path, data)


def test_a_corrupt_pax_size_is_rejected(tmp_path: Path) -> None:
    info = tarfile.TarInfo("a")
    info.pax_headers = {"size": "12x"}
    assert "corrupt pax size" in reject(tmp_path, raw_member(info) + END)


def test_unknown_member_types_are_rejected(tmp_path: Path) -> None:
    info = tarfile.TarInfo("volume")
    info.type = b"V"
    assert "unsupported tar type" in reject(
        tmp_path, raw_member(info, fmt=tarfile.GNU_FORMAT) + END
    )


def test_members_reach_the_writer_as_views_not_copies(tmp_path: Path) -> None:
    """The point of this module: bytes go from the inflated chunk to write() uncopied."""
    seen: list[type] = []

    class Spy(Writer):
        def file(self, rel: str, src: object, mode: int = 0o644) -> None:
            class Recording:
                def read(self, size: int = -1, /) -> bytes | memoryview:
                    chunk = src.read(size)  # type: ignore[attr-defined]
                    seen.append(type(chunk))
                    return chunk  # type: ignore[no-any-return]

            super().file(rel, Recording(), mode)

    payload = random.Random(3).randbytes(3 << 20)
    data = gzip.compress(tar({"v": payload}), 1)
    tarstream.extract(io.BytesIO(data), Spy(tmp_path / "t", Limits(1 << 30, WHERE)), WHERE, True)
    assert (tmp_path / "t" / "v").read_bytes() == payload
    assert memoryview in seen
    assert bytes not in seen[:-1]


def test_a_negative_base_256_size_is_rejected(tmp_path: Path) -> None:
    header = bytearray(tarfile.TarInfo("neg").tobuf(tarfile.GNU_FORMAT, "utf-8", "strict"))
    header[124:136] = b"\xff" * 12  # base-256 for -1
    checksum = 256 + sum(header[:148]) + sum(header[156:])
    header[148:156] = b"%06o\x00 " % checksum
    assert "negative size" in reject(tmp_path, bytes(header) + b"x" * 512 + END)
