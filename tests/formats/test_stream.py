"""The byte streams extractors read: gzip inflated in large steps (behind tar.gz, and
objects stored gzip-encoded)."""

from __future__ import annotations

import io
import random

import pytest

from gcs_model_sync.formats.stream import Gunzip


def noise(size: int, seed: int) -> bytes:
    """Incompressible bytes, the same on every run so that failures reproduce."""
    return random.Random(seed).randbytes(size)


def _gunzip_all(blob: bytes, step: int) -> bytes:
    reader, out = Gunzip(io.BytesIO(blob)), b""
    while chunk := reader.read(step):
        out += chunk
    return out


@pytest.mark.parametrize("step", [3, 4096, 1 << 20])
def test_gunzip_reads_concatenated_members_and_zero_padding(step: int) -> None:
    import gzip

    payload = noise(300_000, 9)
    blob = gzip.compress(payload, 1) + gzip.compress(b"tail") + bytes(10)
    assert _gunzip_all(blob, step) == payload + b"tail"


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda b: b[:-4], EOFError),  # the trailer cut short
        (lambda b: b + b"junk", Exception),  # garbage after the last member
        (lambda b: b[:-6] + bytes([b[-6] ^ 1]) + b[-5:], Exception),  # CRC-32 no longer matches
    ],
    ids=["truncated", "trailing-garbage", "bad-crc"],
)
def test_gunzip_rejects_damaged_streams(damage: object, error: type[Exception]) -> None:
    import gzip
    import zlib

    blob = damage(gzip.compress(noise(50_000, 4), 1))  # type: ignore[operator]
    with pytest.raises((EOFError, zlib.error)) as info:
        _gunzip_all(blob, 1 << 20)
    assert isinstance(info.value, error)
