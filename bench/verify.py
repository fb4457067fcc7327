"""Check a tool's output tree byte for byte against the generated data's sha256 sums."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path


def hash_tree(root: Path) -> dict[str, str]:
    """Every regular file below `root` → sha256, skipping hidden files and folders.

    Hidden entries are a sync tool's own bookkeeping (state, staging); TF Serving ignores them.
    """
    sums: dict[str, str] = {}
    if not root.is_dir():
        return sums
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(top, name)
            with open(path, "rb") as f:
                sums[path.relative_to(root).as_posix()] = hashlib.file_digest(
                    f, "sha256"
                ).hexdigest()
    return sums


def compare(expected: Mapping[str, str], actual: Mapping[str, str], limit: int = 5) -> list[str]:
    """Problems found, at most `limit` of each kind; empty when the trees are equal."""
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    differ = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    problems: list[str] = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("differs", differ)):
        if keys:
            shown = ", ".join(keys[:limit]) + (
                f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
            )
            problems.append(f"{len(keys)} {label}: {shown}")
    return problems


def check_tree(root: Path, expected: Mapping[str, str]) -> list[str]:
    return compare(expected, hash_tree(root))
