"""The deletion guard: whether a pass may delete at all."""

from __future__ import annotations

import pytest

from gcs_model_sync.plan.guard import guard


@pytest.mark.parametrize(
    ("candidates", "listed", "allow_empty", "max_delete", "expected"),
    [
        (0, 0, False, None, None),
        (2, 0, False, None, "the bucket listing holds no versions while 5 managed version(s) "
         "exist locally; refusing to delete (pass --allow-empty-source to allow)"),
        (2, 0, True, None, None),
        (2, 3, False, 2, None),
        (3, 3, False, 2, "3 deletions planned, more than --max-delete 2"),
        (3, 0, True, 2, "3 deletions planned, more than --max-delete 2"),
    ],
)  # fmt: skip
def test_guard(
    candidates: int, listed: int, allow_empty: bool, max_delete: int | None, expected: str | None
) -> None:
    assert guard(candidates, listed, 5, allow_empty, max_delete) == expected
