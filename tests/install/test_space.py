"""Room on the destination: a shared budget across workers, and what an archive states it
extracts to, as its format tells."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple, cast

import pytest

from gcs_model_sync.errors import InsufficientSpace
from gcs_model_sync.formats import archives
from gcs_model_sync.install import space
from gcs_model_sync.layout import Form, RemoteObject
from gcs_model_sync.source.remote import Bucket
from tests.support.models import make_zip


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


def _free(monkeypatch: pytest.MonkeyPatch, free: list[int]) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: _Usage(10**9, 0, free[0]))


def test_two_reservations_that_fit_alone_but_not_together_the_second_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = [1000]
    _free(monkeypatch, free)
    budget = space.Budget()

    first = budget.reserve(tmp_path, 600, keep_free=100, name="gs://b/m/1.zip")
    with pytest.raises(InsufficientSpace) as refused:
        budget.reserve(tmp_path, 600, keep_free=100, name="gs://b/m/2.zip")
    message = str(refused.value)
    assert "gs://b/m/2.zip: needs about 600 bytes but 1000 are free" in message
    assert "600 of them promised to versions being staged" in message
    assert "--min-free-space 100" in message

    # Bytes the first one wrote count against its reservation, not twice.
    first.written = lambda: 300
    free[0] = 700
    with pytest.raises(InsufficientSpace):
        budget.reserve(tmp_path, 400, keep_free=100, name="gs://b/m/2.zip")
    second = budget.reserve(tmp_path, 300, keep_free=100, name="gs://b/m/2.zip")
    first.release()
    second.release()
    assert budget.reserve(tmp_path, 600, keep_free=100, name="gs://b/m/3.zip").need == 600


def test_what_a_versions_partial_downloads_hold_is_not_needed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,500 bytes with 700 of them down already: 800 are lacking. The partial's bytes and
    what staging wrote count against the reservation as they land, each once."""
    free, partial = [1000], [700]
    _free(monkeypatch, free)
    budget = space.Budget()

    first = budget.reserve(tmp_path, 1500, 100, "gs://b/m/1/", on_disk=lambda: partial[0])
    assert first.outstanding == 800
    partial[0], free[0] = 1000, 700  # 300 more bytes arrived
    assert first.outstanding == 500
    with pytest.raises(InsufficientSpace) as refused:
        budget.reserve(tmp_path, 200, 100, "gs://b/m/2.zip")
    assert "500 of them promised" in str(refused.value)
    first.written, partial[0] = lambda: 1000, 0  # the partial moved into staging whole
    assert first.outstanding == 500
    first.release()


def test_a_refusal_says_whether_the_version_would_fit_with_nothing_else_being_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _free(monkeypatch, [1000])
    budget = space.Budget()
    with budget.reserve(tmp_path, 600, 0, "gs://b/m/1.zip"):
        with pytest.raises(space.NoRoom) as crowded:
            budget.reserve(tmp_path, 900, 0, "gs://b/m/2/", on_disk=lambda: 200)
        assert crowded.value.alone
        assert "needs about 700 bytes (besides 200 in its partial downloads)" in str(crowded.value)
    with pytest.raises(space.NoRoom) as never:
        budget.reserve(tmp_path, 1500, 0, "gs://b/m/2/", on_disk=lambda: 200)
    assert not never.value.alone


class _Tails:
    """A bucket that serves object ends, and counts what was asked."""

    def __init__(self, data: bytes) -> None:
        self.data, self.asked = data, list[int]()

    def tail(self, obj: RemoteObject, start: int) -> bytes | None:
        self.asked.append(start)
        return self.data[start:]


@pytest.mark.parametrize(
    ("form", "encoding", "told"),
    [(Form.ZIP, None, True), (Form.ZIP, "gzip", False), (Form.TAR, None, False)],
)
def test_an_archive_states_its_size_only_as_its_format_says(
    form: Form, encoding: str | None, told: bool
) -> None:
    """The format decides whether its end is read and what it says (a zip's central
    directory); an object stored gzip-encoded has no readable end to range into."""
    files = {f"f{i}": bytes(5000) for i in range(3)}
    data = make_zip(files)
    obj = RemoteObject("m/1.zip", 1, len(data), encoding=encoding)
    bucket = _Tails(data)
    extractor = archives.REGISTRY.extractor(form)
    assert extractor is not None

    size = space.stated_size(cast(Bucket, bucket), obj, extractor)

    assert size == (15000 if told else None)
    assert bucket.asked == ([0] if told else [])
