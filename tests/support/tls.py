"""A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost.

A private CA is what a Private Service Connect endpoint or a corporate TLS proxy presents: a
client must be given the CA (REQUESTS_CA_BUNDLE) or it refuses the connection. trustme makes
both certificates in memory; they are written under `directory` so a subprocess can use them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["TLSFiles", "make_tls"]


@dataclass(frozen=True)
class TLSFiles:
    """`ca_pem`: the CA bundle for clients; `cert_pem`/`key_pem`: the server's chain and key."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA and nothing else."""
        return ssl.create_default_context(cafile=str(self.ca_pem))


def make_tls(directory: Path) -> TLSFiles:
    """A fresh CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="gcs-model-sync tests")
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_pem))
    leaf.private_key_pem.write_to_path(str(files.key_pem))
    files.cert_pem.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return files
