"""The zip format's own parts: what its central directory says it extracts to."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from gcs_model_sync.formats import zipformat
from tests.support.models import make_piped_zip, make_zip, sample_files


def _zip64(files: dict[str, bytes]) -> bytes:
    """Zip64 records throughout, as a zip of a model over 4 GiB or 65,535 files has them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            with zf.open(name, "w", force_zip64=True) as f:
                f.write(data)
    return buf.getvalue()


@pytest.mark.parametrize("build", [make_zip, make_piped_zip, _zip64])
def test_a_zip_states_its_extracted_size_at_its_end(
    build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if build is _zip64:  # zip64 sizes in the central directory, and a zip64 end record
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    files = sample_files("x", size=100_000)
    data = build(files)
    if build is _zip64:
        assert b"PK\x06\x06" in data[-200:]
    assert zipformat.stated_size(data) == sum(len(b) for b in files.values())
    assert zipformat.stated_size(data[-1000:]) == sum(len(b) for b in files.values())


def test_a_tail_without_the_whole_central_directory_states_nothing() -> None:
    files = {f"f{i:05d}": b"x" for i in range(2000)}
    data = make_zip(files)
    assert zipformat.stated_size(data) == 2000
    assert zipformat.stated_size(data[-1000:]) is None
    assert zipformat.stated_size(b"not a zip") is None
    assert zipformat.stated_size(b"") is None
