"""CRC-32C as Cloud Storage lists it (big-endian, base64), computed in pieces.

A sliced download checksums each byte range on its own thread; `combine` joins the ranges'
CRCs in order without reading the bytes again (zlib's crc32_combine, for the Castagnoli
polynomial), so a 10 GiB object is not read back from disk to be verified.
"""

from __future__ import annotations

import base64
import importlib
from typing import Any

_POLY = 0x82F63B78  # Castagnoli, bit-reflected
_TOP = 1 << 31  # x^0 in the reflected representation

_crc32c: Any = importlib.import_module("google_crc32c")  # C speed; typed by neither stub nor hint


def extend(crc: int, data: bytes | memoryview) -> int:
    """The CRC-32C of (the bytes `crc` covers) + `data`; start from 0."""
    return int(_crc32c.extend(crc, data))


def b64(crc: int) -> str:
    """The form of the JSON API's `crc32c` field."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def _multiply(a: int, b: int) -> int:
    """a times b modulo the polynomial, both reflected."""
    m, p = _TOP, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _powers() -> list[int]:
    """x^(2^k) modulo the polynomial, k = 0..31."""
    table, p = [], _TOP >> 1  # x^1
    for _ in range(32):
        table.append(p)
        p = _multiply(p, p)
    return table


_X2N = _powers()


def combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32C of A + B from crc(A), crc(B) and len(B)."""
    p, n, k = _TOP, len2, 3  # x^(8·len2): bytes to bits
    while n:
        if n & 1:
            p = _multiply(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multiply(p, crc1) ^ crc2
