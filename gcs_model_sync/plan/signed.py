"""Pure: what the manifests beside a version (V.sha256, V.sig) decide before any download.

A version without a manifest that --require-digest or --require-signature asks for is
rejected from the listing alone; `checked` names what is checked on the staged folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gcs_model_sync.layout import version_id
from gcs_model_sync.plan.versions import Rejection, RemoteVersion


@dataclass(frozen=True, slots=True)
class Required:
    """Which manifests a version must have to be installed, and whether a key checks V.sig."""

    digest: bool = False
    signature: bool = False
    key: bool = False  # --signature-key given: V.sig is checked when listed


def unpinned(
    versions: Iterable[RemoteVersion], required: Required, source: str
) -> tuple[list[RemoteVersion], list[Rejection]]:
    """The versions that have every required manifest, and a rejection for each other one,
    naming the first missing object (`source`: gs://bucket/prefix/)."""
    keep, rejections = [], []
    for v in versions:
        missing = None
        if required.digest and v.beside.digest is None:
            missing = ("sha256", "--require-digest installs only versions with a digest manifest")
        elif required.signature and v.beside.signature is None:
            missing = ("sig", "--require-signature installs only signed versions")
        if missing is None:
            keep.append(v)
            continue
        suffix, why = missing
        name = f"{source}{version_id(v.model, v.version)}.{suffix}"
        rejections.append(Rejection(v.model, v.version, f"{name}: missing; {why}"))
    return keep, rejections


def checked(v: RemoteVersion, required: Required) -> list[str]:
    """The manifests of `v` checked on its staged folder before it is published, as their
    paths below the prefix (m/3.sha256); a V.sig without --signature-key is not checked."""
    vid = version_id(v.model, v.version)
    digest = [f"{vid}.sha256"] if v.beside.digest else []
    return digest + ([f"{vid}.sig"] if v.beside.signature and required.key else [])
