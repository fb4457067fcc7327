"""Objects stored with `Content-Encoding: gzip` (`gsutil cp -Z`, `gcloud storage cp
--gzip-local-all`) land decoded, as `gcloud storage cp` and TF Serving reading gs:// give them;
and a resumed read whose Range is ignored does not append the object to itself."""

from __future__ import annotations

import gzip
import random

from tests.e2e.conftest import Sync
from tests.support.faultproxy import Fault, FaultProxy, Rule
from tests.support.models import big_files, make_tar, make_zip, sample_files

MiB = 1024 * 1024


def put_gzip_encoded(sync: Sync, rel: str, stored: bytes) -> None:
    """Store `stored` as is, marked `Content-Encoding: gzip` (what `gsutil cp -Z` uploads)."""
    blob = sync.bucket.bucket.blob(sync.key(rel))
    blob.content_encoding = "gzip"
    blob.upload_from_string(stored, content_type="text/plain")


def vocabulary(n: int) -> bytes:
    return b"".join(b"[unused%d]\n" % i for i in range(n))


def test_gzip_encoded_object_in_folder_version_lands_decoded(sync: Sync) -> None:
    vocab = vocabulary(50_000)
    files = sample_files("a")
    sync.bucket.put_folder(sync.key("m/1"), files)
    put_gzip_encoded(sync, "m/1/assets/vocab.txt", gzip.compress(vocab))

    result = sync.once("--settle", "0")

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == {**files, "assets/vocab.txt": vocab}


def test_gzip_encoded_zip_and_tar_gz_archives_are_decoded_before_extraction(sync: Sync) -> None:
    zipped, tarred = sample_files("zip", 4096), sample_files("tgz", 4096)
    put_gzip_encoded(sync, "m/1.zip", gzip.compress(make_zip(zipped, top="1")))
    # `gsutil cp -Z` on a .tar.gz compresses it a second time
    put_gzip_encoded(sync, "m/2.tar.gz", gzip.compress(make_tar(tarred, gz=True)))

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == zipped
    assert sync.version("m/2") == tarred


def test_gzip_body_that_does_not_decode_rejects_only_that_version(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("one"))
    assert sync.once().returncode == 0
    installed = (sync.dest / "m" / "1" / "saved_model.pb").stat()
    sync.bucket.put_folder(sync.key("m/2"), sample_files("two"))
    put_gzip_encoded(sync, "m/2/assets/vocab.txt", vocabulary(1000))  # marked, never gzipped
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("three"))

    result = sync.once("--settle", "0")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    named = [line for line in result.stderr.splitlines() if "m/2/assets/vocab.txt" in line]
    assert len(named) == 1, result.stderr
    assert (
        f"gs://{sync.bucket.name}/models/m/2/assets/vocab.txt: stored with Content-Encoding gzip "
        "but the body does not decode ("
    ) in named[0]
    assert sync.versions("m") == ["1", "3"]
    assert sync.version("m/1") == sample_files("one")
    assert (sync.dest / "m" / "1" / "saved_model.pb").stat().st_ino == installed.st_ino
    assert sync.version("m/3") == sample_files("three")


def test_gzip_object_resumes_after_reset_mid_body(proxied: Sync, proxy: FaultProxy) -> None:
    weights = random.Random(3).randbytes(3 * MiB)  # incompressible: ~3 MiB stored
    big = "variables.data-00000-of-00001"
    put_gzip_encoded(proxied, f"m/1/variables/{big}", gzip.compress(weights))
    proxied.bucket.put(proxied.key("m/1/saved_model.pb"), b"pb")
    proxied.bucket.put(proxied.key("m/1/variables/variables.index"), b"index")
    # past the first 1 MiB read, so the resume has an offset
    reset = proxy.add_rule(
        Rule(kind="download", path=big, fault=Fault.RESET, at=MiB + 4321, times=1)
    )

    result = proxied.once("--settle", "0")

    assert result.returncode == 0, result.stderr
    assert reset.fired == 1
    assert proxied.version("m/1") == {
        "saved_model.pb": b"pb",
        "variables/variables.index": b"index",
        f"variables/{big}": weights,
    }
    reads = [r for r in proxy.records if r.name and r.name.endswith(big)]
    assert [(r.range_header, r.status) for r in reads] == [(None, 200), (f"bytes={MiB}-", 206)]


def test_range_answered_with_200_restarts_from_byte_zero(proxied: Sync, proxy: FaultProxy) -> None:
    files = big_files("ranged", 3 * MiB)
    proxied.bucket.put_folder(proxied.key("m/1"), files)
    big = "variables.data-00000-of-00001"
    # every first read of the big object breaks after its first 1 MiB; every resume reaches a
    # proxy that drops the Range, so the upstream answers 200 with the whole object
    proxy.add_rule(Rule(kind="download", path=big, ranged=False, fault=Fault.RESET, at=MiB + 99))
    ignored = proxy.add_rule(Rule(kind="download", path=big, ranged=True, fault=Fault.IGNORE_RANGE))

    result = proxied.once("--settle", "0")

    assert result.returncode == 0, result.stderr
    assert ignored.fired >= 1
    assert proxied.version("m/1") == files
    reads = [r for r in proxy.records if r.name and r.name.endswith(big)]
    assert [(r.range_header, r.status) for r in reads] == [(None, 200), (f"bytes={MiB}-", 200)]
