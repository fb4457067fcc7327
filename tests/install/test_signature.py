"""The manifests beside a version, checked on a staged folder: in-process against the
emulator, with a key pair generated for the test."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import ConfigError, ManifestRefused
from gcs_model_sync.install import fetch
from gcs_model_sync.install.signature import Manifests, check_key, refusals_key
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.phases import snapshot
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.remote import Bucket
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket
from tests.support.models import sample_files
from tests.support.signing import KeyPair, key_pair, sha256sum

Check = Callable[[Path | None], None]


@pytest.fixture
def staged_check(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> Check:
    """Stage the one version of the bucket, then check it with the key given."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)

    def run(key: Path | None) -> None:
        config = Config(Source.parse(f"gs://{bucket.name}/models"), dest, settle=0)
        stop = StopToken()
        (install,) = snapshot.inspect(config, stop).plan.installs
        paths = Paths(dest)
        paths.ensure()
        remote = Bucket(config, stop)
        staged = fetch.stage(remote, install.version, paths, config)
        Manifests(key).check(remote, install.version, staged.content, staged.workdir)

    return run


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return key_pair(tmp_path / "keys")


FILES = sample_files("a")


def test_a_matching_digest_manifest_passes_in_either_form(
    bucket: SeededBucket, staged_check: Check
) -> None:
    bucket.put_folder("models/m/1", FILES)
    lines = sha256sum(FILES).decode().splitlines()
    # sha256sum's binary marker and ./ paths (find . -type f | xargs sha256sum) are the same
    lines[0] = lines[0].replace("  ", " *./", 1)
    bucket.put("models/m/1.sha256", ("\n".join(lines) + "\n").encode())
    staged_check(None)


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        ({**FILES, "saved_model.pb": b"other"}, "saved_model.pb does not match its sha256"),
        ({**FILES, "extra.txt": b"x"}, "extra.txt is listed but not in m/1"),
        (
            {k: v for k, v in FILES.items() if k != "saved_model.pb"},
            "saved_model.pb of m/1 is not listed",
        ),
    ],
)
def test_a_digest_manifest_that_differs_refuses_naming_the_object_and_the_file(
    bucket: SeededBucket, staged_check: Check, manifest: dict[str, bytes], says: str
) -> None:
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/1.sha256", sha256sum(manifest))
    with pytest.raises(ManifestRefused) as refused:
        staged_check(None)
    assert str(refused.value) == f"gs://{bucket.name}/models/m/1.sha256: {says}"


def test_a_manifest_of_the_archive_itself_says_to_list_the_files(
    bucket: SeededBucket, staged_check: Check
) -> None:
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/1.sha256", f"{hashlib.sha256(b'zip').hexdigest()}  1.zip\n".encode())
    with pytest.raises(ManifestRefused, match=r"names the archive 1.zip; list the version's files"):
        staged_check(None)


def test_a_line_that_is_not_sha256sum_refuses(bucket: SeededBucket, staged_check: Check) -> None:
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/1.sha256", b"md5 of everything: 1234\n")
    with pytest.raises(ManifestRefused, match=r"m/1.sha256: line 1 is not `<sha256>  <path>`"):
        staged_check(None)


def test_a_signature_the_key_verifies_passes_and_a_tampered_file_refuses(
    bucket: SeededBucket, staged_check: Check, keys: KeyPair, tmp_path: Path
) -> None:
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/1.sig", keys.sign(FILES, tmp_path / "w1"))
    staged_check(keys.public)
    bucket.put_zip("models/m/1.zip", {**FILES, "saved_model.pb": b"tampered"})
    with pytest.raises(ManifestRefused) as refused:
        staged_check(keys.public)
    message = str(refused.value)
    assert message.startswith(f"gs://{bucket.name}/models/m/1.sig: signature refused m/1: ")
    assert "saved_model.pb" in message
    assert "\n" not in message


def test_a_signature_by_another_key_or_no_bundle_at_all_refuses(
    bucket: SeededBucket, staged_check: Check, keys: KeyPair, tmp_path: Path
) -> None:
    other = key_pair(tmp_path / "other")
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/1.sig", other.sign(FILES, tmp_path / "w1"))
    with pytest.raises(ManifestRefused, match=r"m/1.sig: signature refused m/1: Key mismatch"):
        staged_check(keys.public)
    bucket.put("models/m/1.sig", b"not a bundle")
    with pytest.raises(ManifestRefused, match=r"m/1.sig: signature refused m/1: "):
        staged_check(keys.public)


def test_without_a_key_the_signature_is_not_checked(
    bucket: SeededBucket, staged_check: Check
) -> None:
    bucket.put_zip("models/m/1.zip", FILES)
    bucket.put("models/m/1.sig", b"not a bundle")
    staged_check(None)


def test_a_file_the_signature_cannot_cover_refuses(
    bucket: SeededBucket, staged_check: Check, keys: KeyPair, tmp_path: Path
) -> None:
    """model-signing leaves .git* out of what it hashes: it would be published unchecked."""
    bucket.put_zip("models/m/1.zip", {**FILES, ".gitattributes": b"* binary"})
    bucket.put("models/m/1.sig", keys.sign(FILES, tmp_path / "w1"))
    with pytest.raises(ManifestRefused, match=r"\.gitattributes is not covered by a signature"):
        staged_check(keys.public)


def test_a_key_that_cannot_verify_is_a_usage_error(tmp_path: Path, keys: KeyPair) -> None:
    check_key(keys.public)
    with pytest.raises(ConfigError, match=r"^--signature-key: cannot read .*missing.pem"):
        check_key(tmp_path / "missing.pem")
    (tmp_path / "x.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n")
    with pytest.raises(ConfigError, match=r"is not an elliptic-curve public key$"):
        check_key(tmp_path / "x.pem")


def test_without_the_library_a_key_is_a_one_line_usage_error(
    keys: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "model_signing.verifying", None)  # as if not installed
    with pytest.raises(ConfigError) as missing:
        check_key(keys.public)
    assert str(missing.value).startswith("--signature-key needs the model-signing library")
    assert str(missing.value).endswith("pip install 'gcs-model-sync[signing]'")
    assert "\n" not in str(missing.value)


def test_a_refusal_stands_for_the_verify_command_and_the_key(tmp_path: Path, keys: KeyPair) -> None:
    base = Config(Source.parse("gs://bkt/p"), tmp_path / "d")
    assert refusals_key(base) == ""
    with_key = Config(Source.parse("gs://bkt/p"), tmp_path / "d", signature_key=keys.public)
    before = refusals_key(with_key)
    assert before not in ("", refusals_key(base))
    key_pair(keys.public.parent)  # another key under the same name
    assert refusals_key(with_key) != before
