"""Durations and sizes as people write them, for every option and variable that takes one.

Durations: plain seconds (`60`, `0.3`) or Go's time.ParseDuration form with days added
(`500ms`, `90s`, `5m`, `1h30m`, `2d`), as git-sync and rclone take them.

Sizes: bytes, or a number with a unit, in powers of 1024 however it is spelled: `10M`, `10Mi`,
`10MiB` and `10MB` are all 10 * 2**20 (rclone's rule for --bwlimit; a model server's memory and
a disk's free space are also counted this way). Units: B, K, M, G, T, P, any case.

Only the syntax is checked here; each option's range is Config's, so that one message names
the option and its range whether the value came from a flag, a variable or code.
"""

from __future__ import annotations

import math
import re

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")
_DURATION = re.compile(rf"[+-]?(?:{_NUMBER}(?:ms|s|m|h|d))+")
DURATION_SYNTAX = "seconds, or 500ms, 90s, 5m, 1h30m, 2d"

SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_SIZE = re.compile(rf"([+-]?{_NUMBER}(?:e[+-]?\d+)?)\s*(?:([KMGTP])(?:I?B|I)?|B)?", re.IGNORECASE)
SIZE_SYNTAX = "bytes, or 500K, 10M, 10Mi, 1.5G, 2T (powers of 1024)"


def parse_duration(text: str) -> float:
    """Seconds. `inf` and `nan` pass as floats: the option's range check refuses them."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    if not _DURATION.fullmatch(t):
        raise ValueError(f"not a duration: {text!r} ({DURATION_SYNTAX})")
    total = sum(float(n) * DURATION_UNITS[u] for n, u in _PART.findall(t))
    return -total if t.startswith("-") else total


def parse_size(text: str) -> int:
    """Bytes; a fraction of a byte is dropped (`1.5K` is 1536, `0.3` is 0)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a size: {text!r} ({SIZE_SYNTAX})")
    number, unit = match.groups()
    value = float(number) * SIZE_UNITS[(unit or "").upper()]
    if not math.isfinite(value):
        raise ValueError(f"not a size: {text!r} (too big; {SIZE_SYNTAX})")
    return int(value)


def format_duration(seconds: float) -> str:
    """The shortest of the forms parse_duration reads: 604800 -> `7d`, 5400 -> `1h30m`."""
    if not math.isfinite(seconds) or seconds < 1 or seconds != int(seconds):
        return f"{seconds:g}"
    parts, rest = [], int(seconds)
    for unit in ("d", "h", "m", "s"):
        count, rest = divmod(rest, int(DURATION_UNITS[unit]))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_size(size: int) -> str:
    """The shortest exact form parse_size reads: 2**50 -> `1P`, 1536 -> `1536`."""
    for unit in ("P", "T", "G", "M", "K"):
        if size and size % SIZE_UNITS[unit] == 0:
            return f"{size // SIZE_UNITS[unit]}{unit}"
    return str(size)


def human(n: float) -> str:
    """A size for people to read: 1536 -> `1.5 KiB`."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
