"""Small google-cloud-storage helpers for arranging a bucket in the emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.models import Files, make_tar, make_zip


def client(emulator_url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator_url},
    )


class Bucket:
    """A test bucket with helpers to push versions in each supported form."""

    def __init__(self, gcs: Any, name: str) -> None:
        self.name = name
        self.bucket = gcs.create_bucket(name)

    def put(self, key: str, data: bytes) -> int:
        blob = self.bucket.blob(key)
        blob.upload_from_string(data)
        return int(blob.generation)

    def delete(self, key: str) -> None:
        self.bucket.blob(key).delete()

    def delete_prefix(self, prefix: str) -> None:
        for blob in list(self.bucket.list_blobs(prefix=prefix)):
            blob.delete()

    def put_zip(self, key: str, files: Files, top: str | None = None) -> int:
        return self.put(key, make_zip(files, top))

    def put_tar(self, key: str, files: Files, top: str | None = None, gz: bool = False) -> int:
        return self.put(key, make_tar(files, top, gz))

    def put_folder(self, prefix: str, files: Mapping[str, bytes]) -> None:
        for name, data in files.items():
            self.put(f"{prefix.rstrip('/')}/{name}", data)

    def object_names(self) -> list[str]:
        return sorted(b.name for b in self.bucket.list_blobs())
