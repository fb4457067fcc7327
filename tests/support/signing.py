"""Digest manifests and model-signing bundles made the way a publisher makes them, with a key
pair generated for the test (nothing secret is committed, nothing leaves the machine)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.models import Files


def sha256sum(files: Files) -> bytes:
    """What `sha256sum` prints run inside the version folder: `<hex>  <path>` per file."""
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {rel}\n" for rel, data in sorted(files.items())
    ).encode()


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path

    def sign(self, files: Files, work: Path) -> bytes:
        """The model-signing bundle of a version folder holding `files`."""
        import model_signing

        folder = work / "model"
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        bundle = work / "model.sig"
        model_signing.signing.Config().use_elliptic_key_signer(private_key=self.private).sign(
            folder, bundle
        )
        return bundle.read_bytes()


def key_pair(where: Path) -> KeyPair:
    """A fresh P-256 key pair, as PEM files under `where`."""
    where.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = where / "signing.key", where / "signing.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private, public)
