"""CRC-32C pieces: combining ranges' CRCs gives the whole object's, as the JSON API lists it."""

from __future__ import annotations

import base64
import itertools
import random

import google_crc32c
import pytest

from gcs_model_sync.source import checksum


def listed(data: bytes) -> str:
    """The `crc32c` field Cloud Storage would list for `data`."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


@pytest.mark.parametrize("sizes", [(0, 1), (1, 0), (5, 6), (1000, 12345), (3, 1 << 20)])
def test_combined_crc_of_two_parts_is_the_crc_of_both(sizes: tuple[int, int]) -> None:
    rng = random.Random(sum(sizes))
    a, b = rng.randbytes(sizes[0]), rng.randbytes(sizes[1])
    combined = checksum.combine(checksum.extend(0, a), checksum.extend(0, b), len(b))
    assert checksum.b64(combined) == listed(a + b)


def test_ranges_combined_in_order_match_the_whole_object() -> None:
    data = random.Random(7).randbytes(10_000_001)
    cuts = [0, 1, 4096, 4_000_000, 9_999_999, len(data)]
    crc = 0
    for start, end in itertools.pairwise(cuts):
        crc = checksum.combine(crc, checksum.extend(0, data[start:end]), end - start)
    assert checksum.b64(crc) == listed(data)


def test_a_changed_byte_changes_the_combined_crc() -> None:
    data = random.Random(3).randbytes(4096)
    whole = checksum.combine(checksum.extend(0, data[:100]), checksum.extend(0, data[100:]), 3996)
    changed = data[:2000] + bytes([data[2000] ^ 1]) + data[2001:]
    assert checksum.b64(whole) == listed(data)
    assert checksum.b64(whole) != listed(changed)


def test_extend_continues_a_crc_across_chunks() -> None:
    data = random.Random(5).randbytes(3000)
    assert checksum.extend(checksum.extend(0, data[:1234]), data[1234:]) == checksum.extend(0, data)
