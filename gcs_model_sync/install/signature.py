"""The manifests beside a version, checked on its staged folder before it is published.

V.sha256 (when listed) must name every file of the folder with its sha256, in sha256sum's
format; V.sig (when listed and --signature-key is given) must be a model-signing bundle of the
folder that the key verifies. A mismatch raises ManifestRefused, naming the object, and is
remembered like a --verify refusal. model-signing is imported only when a signature is
checked: it costs 0.4 s, and most passes check none.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs_model_sync.config import Config
from gcs_model_sync.errors import ConfigError, ManifestRefused
from gcs_model_sync.layout import Form, RemoteObject
from gcs_model_sync.logs import event
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.source.remote import Bucket

MANIFEST_MAX = 16 * 1024 * 1024  # bytes read of V.sha256 or V.sig; a bigger one is refused
INSTALL = "pip install 'gcs-model-sync[signing]'"
# model-signing's verifier leaves these out of what it checks: such a file would be published
# unverified, so a signed version holding one is refused instead.
UNCOVERED = (".git", ".gitattributes", ".github", ".gitignore")
_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")


def _library() -> Any:
    """model_signing.verifying, or a usage error saying how to install it."""
    try:
        return importlib.import_module("model_signing.verifying")
    except ImportError as exc:
        raise ConfigError(
            f"--signature-key needs the model-signing library ({exc}): {INSTALL}"
        ) from exc


def check_key(key: Path) -> None:
    """A --signature-key that cannot verify anything is a usage error before any pass."""
    verifying = _library()
    try:
        verifying.Config().use_elliptic_key_verifier(public_key=key)
    except OSError as exc:
        raise ConfigError(f"--signature-key: cannot read {key} ({exc.strerror})") from exc
    except Exception as exc:  # the library says ValueError or UnsupportedAlgorithm
        raise ConfigError(f"--signature-key: {key} is not an elliptic-curve public key") from exc


def refusals_key(config: Config) -> str:
    """What a remembered refusal stands for: the --verify command and the key; another of
    either checks a refused version again."""
    if config.signature_key is None:
        return config.verify or ""
    try:
        key = hashlib.sha256(config.signature_key.read_bytes()).hexdigest()[:16]
    except OSError:
        key = str(config.signature_key)
    return f"{config.verify or ''}\x00signature-key:{key}"


@dataclass(frozen=True, slots=True)
class Manifests:
    """Checks each staged version against the manifests listed beside it."""

    key: Path | None  # --signature-key

    def check(self, bucket: Bucket, v: RemoteVersion, folder: Path, scratch: Path) -> None:
        """Raise ManifestRefused unless `folder` matches V.sha256 and V.sig (when listed);
        `scratch` is a private folder for the bundle, outside `folder`."""
        if v.beside.digest is not None:
            _digests(bucket, v, v.beside.digest, folder)
        if v.beside.signature is not None and self.key is not None:
            _signature(bucket, v, v.beside.signature, folder, scratch, self.key)


def _named(bucket: Bucket, obj: RemoteObject) -> str:
    return f"gs://{bucket.source.bucket}/{obj.name}"


def _read(bucket: Bucket, obj: RemoteObject) -> bytes:
    if obj.size > MANIFEST_MAX:
        raise ManifestRefused(f"{_named(bucket, obj)}: more than {MANIFEST_MAX} bytes")
    with bucket.open(obj) as reader:
        content = reader.content()
        data = content.read(MANIFEST_MAX + 1)
        if len(data) > MANIFEST_MAX:
            raise ManifestRefused(f"{_named(bucket, obj)}: decodes to more than {MANIFEST_MAX}")
        content.verify()
    return data


def _files(folder: Path) -> dict[str, Path]:
    return {
        (Path(d) / f).relative_to(folder).as_posix(): Path(d) / f
        for d, _dirs, fs in os.walk(folder)
        for f in fs
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def _digests(bucket: Bucket, v: RemoteVersion, obj: RemoteObject, folder: Path) -> None:
    """Every file of the folder listed with its digest, and nothing listed that is not there."""
    name = _named(bucket, obj)
    wanted: dict[str, str] = {}
    for n, raw in enumerate(_read(bucket, obj).decode(errors="replace").splitlines(), 1):
        if not raw.strip():
            continue
        m = _LINE.fullmatch(raw.rstrip("\r"))
        if m is None:
            raise ManifestRefused(f"{name}: line {n} is not `<sha256>  <path>` (sha256sum)")
        wanted[m.group(2).removeprefix("./")] = m.group(1).lower()
    have = _files(folder)
    archive = v.objects[0].name.rpartition("/")[2]
    if v.form is not Form.FOLDER and archive in wanted and archive not in have:
        raise ManifestRefused(
            f"{name}: names the archive {archive}; list the version's files instead "
            "(sha256sum run inside the version folder)"
        )
    for rel in sorted(set(wanted) | set(have)):
        if rel not in have:
            raise ManifestRefused(f"{name}: {rel} is listed but not in {v.id}")
        if rel not in wanted:
            raise ManifestRefused(f"{name}: {rel} of {v.id} is not listed")
        if _sha256(have[rel]) != wanted[rel]:
            raise ManifestRefused(f"{name}: {rel} does not match its sha256")
    event(logging.INFO, "digests_matched", f"sha256 of {v.id} matched ({len(have)} files)")


def _signature(
    bucket: Bucket, v: RemoteVersion, obj: RemoteObject, folder: Path, scratch: Path, key: Path
) -> None:
    name = _named(bucket, obj)
    if uncovered := [p for p in UNCOVERED if (folder / p).exists()]:
        raise ManifestRefused(
            f"{name}: signature refused {v.id}: {uncovered[0]} is not covered by a signature"
        )
    bundle = scratch / "signature.sig"
    bundle.write_bytes(_read(bucket, obj))
    verifier = _library().Config().use_elliptic_key_verifier(public_key=key)
    try:
        verifier.verify(folder, bundle)
    except Exception as exc:  # ValueError, InvalidSignature, a malformed bundle: all refuse
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ManifestRefused(f"{name}: signature refused {v.id}: {why}") from exc
    finally:
        bundle.unlink(missing_ok=True)
    event(logging.INFO, "signature_verified", f"signature of {v.id} verified with {key}")
