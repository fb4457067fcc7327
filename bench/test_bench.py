"""Checks of the harness's own pure parts: `python -m pytest bench` (not part of `make test`)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest

from bench.data import FileSpec, generate, sha256_file
from bench.emulator import classify, count_requests
from bench.verify import check_tree, compare, hash_tree


@pytest.mark.parametrize(
    ("method", "target", "kind"),
    [
        ("GET", "/storage/v1/b/bk/o?alt=json&prefix=bench%2F&delimiter=%2F", "list"),
        ("GET", "/storage/v1/b/bk/o", "list"),
        ("GET", "/storage/v1/b/bk/o/bench%2Fm%2F0001.zip?alt=json", "metadata"),
        ("GET", "/storage/v1/b/bk/o/bench%2Fm%2F0001.zip?alt=media", "read"),
        ("GET", "/download/storage/v1/b/bk/o/bench%2Fm%2F0001.zip?alt=media", "read"),
        ("GET", "/bk/bench/m/0001.zip", "read"),
        ("GET", "/storage/v1/b/bk?projection=noAcl", "other"),
        ("POST", "/upload/storage/v1/b/bk/o?uploadType=multipart", "other"),
    ],
)
def test_classify(method: str, target: str, kind: str) -> None:
    assert classify(method, target) == kind


def test_count_requests_reads_the_access_log_lines() -> None:
    lines = [
        'time=x level=INFO msg="server started at http://127.0.0.1:1"',
        'time=x level=INFO msg="127.0.0.1 - - [22/Nov/2026:19:53:10 +0000] '
        '\\"GET /storage/v1/b/bk/o?prefix=p%2F HTTP/1.1\\" 200 1572\\n"',
        'time=x level=INFO msg="127.0.0.1 - - [22/Nov/2026:19:53:10 +0000] '
        '\\"GET /download/storage/v1/b/bk/o/p%2Fa?alt=media HTTP/1.1\\" 206 0\\n"',
        'time=x level=INFO msg="127.0.0.1 - - [22/Nov/2026:19:53:10 +0000] '
        '\\"GET /storage/v1/b/bk/o/p?alt=json HTTP/1.1\\" 404 119\\n"',
    ]
    counts = count_requests(lines)
    assert (counts.list, counts.metadata, counts.read, counts.other) == (1, 1, 1, 0)
    assert counts.errors == 1
    assert counts.total == 3


def test_compare_reports_each_kind_of_difference() -> None:
    problems = compare({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "X", "d": "4"})
    assert problems == ["1 missing: c", "1 unexpected: d", "1 differs: b"]
    assert compare({"a": "1"}, {"a": "1"}) == []


def test_hash_tree_skips_hidden_entries(tmp_path: Path) -> None:
    (tmp_path / "m" / "0001").mkdir(parents=True)
    (tmp_path / "m" / "0001" / "saved_model.pb").write_bytes(b"x")
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "manifest").write_bytes(b"y")
    (tmp_path / "m" / ".staging-0002").write_bytes(b"z")
    assert list(hash_tree(tmp_path)) == ["m/0001/saved_model.pb"]


@pytest.mark.parametrize("form", ["zip", "tgz", "folder"])
def test_generated_versions_extract_to_the_published_sums(tmp_path: Path, form: str) -> None:
    files = [FileSpec("saved_model.pb", 10), FileSpec("variables/variables.data", 5 << 20)]
    ds = generate(tmp_path / "data", "bk", "bench", form, 2, 2, files)  # type: ignore[arg-type]
    base = tmp_path / "data" / "bk" / "bench"
    assert ds.versions == 4
    assert ds.payload_bytes == 4 * (10 + (5 << 20))
    assert {k: sha256_file(base / k) for k in ds.objects} == ds.objects
    if form == "folder":
        assert check_tree(base, ds.published) == []
        return
    out = tmp_path / "out"
    for key in ds.objects:
        model_dir = out / key.split("/")[0]
        if form == "zip":
            with zipfile.ZipFile(base / key) as zf:
                assert zf.testzip() is None
                zf.extractall(model_dir)  # noqa: S202  # archives we just made
        else:
            with tarfile.open(base / key) as tf:
                tf.extractall(model_dir, filter="data")
    assert check_tree(out, ds.published) == []
    assert sorted(ds.published)[0] == "model0/0001/saved_model.pb"
