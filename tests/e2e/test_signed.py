"""Digest-pinned and signed versions (`V.sha256`, `V.sig` beside a version), through the real
CLI: checked on the staged folder before publishing, refusals remembered, fail closed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from tests.e2e.conftest import Sync
from tests.support.models import sample_files
from tests.support.signing import key_pair, sha256sum

_work = itertools.count()


def errors(stderr: str) -> list[str]:
    """The error lines of a text log, less the pass's summary."""
    return [x for x in stderr.splitlines() if " ERROR " in x and " pass error: " not in x]


def done(stderr: str) -> dict[str, object]:
    return next(json.loads(x) for x in stderr.splitlines() if '"pass_done"' in x)


def test_a_version_whose_digest_does_not_match_is_not_published_and_the_rest_goes_on(
    sync: Sync,
) -> None:
    b, good, bad = sync.bucket, sample_files("a"), sample_files("b")
    b.put_zip(sync.key("m/1.zip"), good)
    b.put(sync.key("m/1.sha256"), sha256sum(good))
    b.put_zip(sync.key("m/2.zip"), bad)
    b.put(sync.key("m/2.sha256"), sha256sum({**bad, "saved_model.pb": b"what was meant"}))
    b.put_folder(sync.key("n/1"), sample_files("c"))
    b.put(sync.key("n/1.sha256"), sha256sum(sample_files("c")))

    result = sync.once()
    assert result.returncode == 1, result.stderr
    [line] = errors(result.stderr)
    assert f"gs://{b.name}/models/m/2.sha256: saved_model.pb does not match its sha256" in line
    assert sync.versions("m") == ["1"]
    assert sync.version("m/1") == good
    assert sync.version("n/1") == sample_files("c")

    again = sync.once("--log-format", "json")
    assert again.returncode == 1, again.stderr
    assert done(again.stderr)["object_reads"] == 0  # remembered: not downloaded again
    assert "refused earlier" in again.stderr

    b.put(sync.key("m/2.sha256"), sha256sum(bad))  # a corrected manifest: a new generation
    fixed = sync.once()
    assert fixed.returncode == 0, fixed.stderr
    assert sync.versions("m") == ["1", "2"]
    assert sync.version("m/2") == bad


def test_require_signature_refuses_an_unsigned_version_and_installs_the_signed_one(
    sync: Sync, tmp_path: Path
) -> None:
    keys = key_pair(tmp_path / "keys")
    b, signed, folder = sync.bucket, sample_files("a"), sample_files("f")
    b.put_zip(sync.key("m/1.zip"), signed)
    b.put(sync.key("m/1.sig"), keys.sign(signed, tmp_path / "w1"))
    b.put_folder(sync.key("f/7"), folder)
    b.put(sync.key("f/7.sig"), keys.sign(folder, tmp_path / "w2"))
    b.put_zip(sync.key("m/2.zip"), sample_files("b"))  # no m/2.sig
    flags = ("--signature-key", str(keys.public), "--require-signature")

    plan = sync.run("plan", *flags, "--output", "json")
    assert plan.returncode == 1, plan.stderr
    rows = {r["version"]: r for r in json.loads(plan.stdout)["actions"]}
    assert rows["m/2"]["action"] == "reject"
    assert f"gs://{b.name}/models/m/2.sig: missing" in rows["m/2"]["reason"]
    assert rows["m/1"]["action"] == "fetch"
    assert "m/1.sig" in rows["m/1"]["reason"]  # plan says what is checked before publishing

    result = sync.once(*flags)
    assert result.returncode == 1, result.stderr
    [line] = errors(result.stderr)
    assert f"gs://{b.name}/models/m/2.sig: missing; --require-signature" in line
    assert sync.versions("m") == ["1"]
    assert sync.version("m/1") == signed
    assert sync.version("f/7") == folder
    assert "signature of m/1 verified" in result.stderr


def test_a_tampered_signed_version_is_refused_with_one_line_naming_the_object(
    sync: Sync, tmp_path: Path
) -> None:
    keys, other = key_pair(tmp_path / "keys"), key_pair(tmp_path / "other")
    b, first = sync.bucket, sample_files("a")
    b.put_zip(sync.key("m/1.zip"), first)
    b.put(sync.key("m/1.sig"), keys.sign(first, tmp_path / "w1"))
    flags = ("--signature-key", str(keys.public))
    assert sync.once(*flags).returncode == 0
    signed = sample_files("b")
    b.put_zip(sync.key("m/2.zip"), {**signed, "saved_model.pb": b"tampered"})
    b.put(sync.key("m/2.sig"), keys.sign(signed, tmp_path / "w2"))
    b.put_zip(sync.key("m/3.zip"), sample_files("c"))
    b.put(sync.key("m/3.sig"), other.sign(sample_files("c"), tmp_path / "w3"))

    result = sync.once(*flags)
    assert result.returncode == 1, result.stderr
    lines = errors(result.stderr)
    assert len(lines) == 2, lines
    tampered, wrong_key = sorted(lines, key=lambda x: "m/3.sig" in x)
    assert f"gs://{b.name}/models/m/2.sig: signature refused m/2:" in tampered
    assert "saved_model.pb" in tampered
    assert f"gs://{b.name}/models/m/3.sig: signature refused m/3:" in wrong_key
    assert sync.versions("m") == ["1"]
    assert sync.version("m/1") == first  # the published version is untouched


def test_a_new_signature_beside_an_installed_version_checks_it_again(
    sync: Sync, tmp_path: Path
) -> None:
    keys, other = key_pair(tmp_path / "keys"), key_pair(tmp_path / "other")
    b, files = sync.bucket, sample_files("a")
    b.put_zip(sync.key("m/1.zip"), files)
    flags = ("--signature-key", str(keys.public))
    assert sync.once(*flags).returncode == 0
    b.put(sync.key("m/1.sig"), other.sign(files, tmp_path / "w"))  # signed by someone else
    result = sync.once(*flags)
    assert result.returncode == 1, result.stderr
    [line] = errors(result.stderr)
    assert f"gs://{b.name}/models/m/1.sig: signature refused m/1" in line
    assert sync.version("m/1") == files  # the installed folder stays


def test_require_digest_refuses_a_version_without_a_manifest_before_any_download(
    sync: Sync,
) -> None:
    b = sync.bucket
    b.put_zip(sync.key("m/1.zip"), sample_files("a"))
    b.put(sync.key("m/1.sha256"), sha256sum(sample_files("a")))
    b.put_zip(sync.key("m/2.zip"), sample_files("b"))
    result = sync.once("--require-digest", "--log-format", "json")
    assert result.returncode == 1, result.stderr
    [line] = [json.loads(x) for x in result.stderr.splitlines() if '"version_rejected"' in x]
    assert line["message"].startswith(f"gs://{b.name}/models/m/2.sha256: missing; --require-")
    assert done(result.stderr)["object_reads"] == 2  # m/1.zip and m/1.sha256 only
    assert sync.versions("m") == ["1"]


def test_require_signature_without_a_key_is_a_usage_error(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    result = sync.once("--require-signature")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gcs-model-sync: error: --require-signature needs --signature-key: the elliptic-curve "
        "public key (PEM) that verifies each V.sig"
    ]
    assert sync.versions("m") == []


def test_companion_objects_are_never_versions_nor_model_files(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("m/1.zip"), sample_files("a"))
    b.put(sync.key("m/1.sha256"), sha256sum(sample_files("a")))
    b.put(sync.key("m/9.sig"), b"a signature of no version")
    b.put(sync.key("m/config.pbtxt"), b"name: 'm'")
    result = sync.once("--model-files")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (sync.dest / "m").iterdir()) == ["1", "config.pbtxt"]
