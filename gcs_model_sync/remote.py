"""The bucket, over the GCS JSON API: one paginated listing and pinned, verified reads.

Listing goes through google-cloud-storage; object reads use the same authorized session
directly so that a read can stream, resume at an offset after a reset, and be checked
against the listed crc32c/md5 while the bytes go by.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

# Loaded with this module (which `--help` never imports), so its ~0.3 s is start-up, paid once
# per process, and not part of every pass's time in the `run` loop's metrics and logs.
import google.cloud.storage  # noqa: F401

from gcs_model_sync import retry
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import (
    AccessDenied,
    BucketNotFound,
    ChecksumMismatch,
    ConfigError,
    ObjectChanged,
    RemoteError,
    TransientError,
)
from gcs_model_sync.layout import RemoteObject

if TYPE_CHECKING:
    import requests

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
LIST_FIELDS = "items(name,generation,size,crc32c,md5Hash),nextPageToken"
CHUNK = 1024 * 1024
T = TypeVar("T")


@dataclass
class Counters:
    """Requests and bytes, for logs, metrics and the request-budget test."""

    list_requests: int = 0
    object_reads: int = 0
    bytes_read: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, *, lists: int = 0, reads: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.list_requests += lists
            self.object_reads += reads
            self.bytes_read += nbytes


class Bucket:
    """Read-only access to one bucket."""

    def __init__(self, config: Config, stop: retry.StopToken) -> None:
        self.source: Source = config.source
        self.config = config
        self.stop = stop
        self.counters = Counters()
        self._session, self._client, self._base = _connect(
            config.anonymous,
            config.project,
            config.workers,
            os.environ.get("STORAGE_EMULATOR_HOST"),
        )

    # -- listing ---------------------------------------------------------------------
    def list_objects(self) -> list[RemoteObject]:
        """Every object under the prefix, one paginated listing (page token resumes on retry)."""
        objects: list[RemoteObject] = []
        token: str | None = None
        while True:
            page, token = self._retry(functools.partial(self._list_page, token), "listing")
            objects.extend(page)
            self.stop.check()
            if not token:
                return objects

    def _list_page(self, token: str | None) -> tuple[list[RemoteObject], str | None]:
        from google.api_core import exceptions as gexc

        self.counters.add(lists=1)
        it = self._client.list_blobs(
            self.source.bucket,
            prefix=self.source.prefix or None,
            page_size=self.config.list_page_size,
            page_token=token,
            fields=LIST_FIELDS,
            retry=None,
            timeout=(10, self.config.request_timeout),
        )
        try:
            page = next(it.pages)
            items = [
                RemoteObject(b.name, int(b.generation), int(b.size or 0), b.crc32c, b.md5_hash)
                for b in page
            ]
        except StopIteration:
            return [], None
        except gexc.NotFound as exc:
            raise BucketNotFound(f"bucket gs://{self.source.bucket} not found") from exc
        except gexc.Forbidden as exc:
            raise AccessDenied(
                f"permission storage.objects.list denied on bucket gs://{self.source.bucket} "
                f"({_who(self._session)}): {_short(exc)}"
            ) from exc
        except gexc.Unauthorized as exc:
            raise AccessDenied(
                f"credentials rejected listing gs://{self.source.bucket}: {_short(exc)}"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            if retry.is_transient(exc):
                raise
            raise RemoteError(f"listing gs://{self.source.bucket} failed: {_short(exc)}") from exc
        return items, it.next_page_token

    # -- reading ---------------------------------------------------------------------
    def open(self, obj: RemoteObject) -> ObjectReader:
        return ObjectReader(self, obj)

    def _get(self, obj: RemoteObject, offset: int) -> requests.Response:
        url = (
            f"{self._base}/download/storage/v1/b/{quote(self.source.bucket, safe='')}"
            f"/o/{quote(obj.name, safe='')}?alt=media&generation={obj.generation}"
        )
        headers = {"Accept-Encoding": "gzip"}  # never transcode: checksums are of stored bytes
        if offset:
            headers["Range"] = f"bytes={offset}-"
        self.counters.add(reads=1)
        resp: requests.Response = self._session.get(
            url, headers=headers, stream=True, timeout=(10, self.config.request_timeout)
        )
        status = resp.status_code
        if status in (200, 206):
            return resp
        resp.close()
        where = f"gs://{self.source.bucket}/{obj.name}"
        if status == 404:
            raise ObjectChanged(
                f"{where}: generation {obj.generation} is gone (changed or deleted mid-pass)"
            )
        if status in (401, 403):
            raise AccessDenied(
                f"{where}: permission storage.objects.get denied ({_who(self._session)})"
            )
        if status == 429 or status >= 500:
            raise TransientError(f"{where}: HTTP {status}")
        raise RemoteError(f"{where}: HTTP {status}")

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return retry.call(
            fn,
            what=what,
            attempts=self.config.retry_attempts,
            deadline=self.config.retry_deadline,
            stop=self.stop,
        )


class ObjectReader:
    """A read of one object generation in chunks that resumes after resets and checks size
    and crc32c (or md5) at EOF, raising ChecksumMismatch instead of returning bad bytes."""

    def __init__(self, bucket: Bucket, obj: RemoteObject) -> None:
        self._bucket = bucket
        self.obj = obj
        self.offset = 0
        self._resp: requests.Response | None = None
        self._crc = _Crc32c() if obj.crc32c else None
        self._md5 = hashlib.md5(usedforsecurity=False) if not obj.crc32c and obj.md5 else None
        self._verified = False

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes (a chunk when negative); b"" once all were read and checked."""
        want = CHUNK if size < 0 else size
        if self.offset >= self.obj.size:
            self._finish()
            return b""
        self._bucket.stop.check()
        data = self._bucket._retry(lambda: self._read_some(want), f"reading {self.obj.name}")
        self.offset += len(data)
        self._bucket.counters.add(nbytes=len(data))
        if self._crc:
            self._crc.update(data)
        elif self._md5:
            self._md5.update(data)
        return data

    def _read_some(self, want: int) -> bytes:
        import requests
        import urllib3

        try:
            if self._resp is None:
                self._resp = self._bucket._get(self.obj, self.offset)
            data: bytes = self._resp.raw.read(
                min(want, self.obj.size - self.offset), decode_content=False
            )
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as e:
            self._drop()
            raise TransientError(f"gs://{self._bucket.source.bucket}/{self.obj.name}: {e}") from e
        if not isinstance(data, bytes) or not data:  # the body ended early: resume from here
            self._drop()
            raise TransientError(f"{self.obj.name}: body ended at byte {self.offset}")
        return data

    def _finish(self) -> None:
        if self._verified:
            return
        self._drop()
        where = f"gs://{self._bucket.source.bucket}/{self.obj.name}"
        if self.offset != self.obj.size:
            raise ChecksumMismatch(f"{where}: got {self.offset} bytes, listed {self.obj.size}")
        if self._crc and self._crc.b64() != self.obj.crc32c:
            raise ChecksumMismatch(f"{where}: crc32c mismatch, content not published")
        if self._md5 and base64.b64encode(self._md5.digest()).decode() != self.obj.md5:
            raise ChecksumMismatch(f"{where}: md5 mismatch, content not published")
        self._verified = True

    def verify(self) -> None:
        """Drain whatever the consumer did not need, then check the checksum."""
        while self.read(CHUNK):
            pass
        self._finish()

    def _drop(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Crc32c:
    def __init__(self) -> None:
        import importlib

        self._c: Any = importlib.import_module("google_crc32c").Checksum()

    def update(self, data: bytes) -> None:
        self._c.update(data)

    def b64(self) -> str:
        return base64.b64encode(self._c.digest()).decode()


@functools.lru_cache(maxsize=4)
def _connect(
    anonymous: bool, project: str | None, workers: int, emulator: str | None
) -> tuple[Any, Any, str]:
    """Session, storage client and base URL for the emulator, a public bucket, or ADC.

    Made once per process: the `run` loop's passes share credentials (a token is refreshed
    only when it expires, not fetched every poll) and keep-alive connections.
    """
    import importlib

    import requests
    from google.cloud import storage

    anonymous_credentials: Any = importlib.import_module("google.auth.credentials")
    AnonymousCredentials = anonymous_credentials.AnonymousCredentials

    # google-cloud-storage >= 3.x fetches bucket metadata in the background to decorate trace
    # spans: one more request per pass, needing storage.buckets.get. Polling must not pay it.
    os.environ.setdefault("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=workers + 4, max_retries=0)
    if emulator:
        base = emulator if "://" in emulator else f"http://{emulator}"
        credentials: Any = AnonymousCredentials()
        session: Any = requests.Session()
        project = project or "emulator"
    elif anonymous:
        base, credentials = "https://storage.googleapis.com", AnonymousCredentials()
        session = requests.Session()
        project = project or "anonymous"
    else:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        transport: Any = importlib.import_module("google.auth.transport.requests")

        try:
            credentials, adc_project = google.auth.default(scopes=[READ_ONLY_SCOPE])
        except DefaultCredentialsError as exc:
            raise ConfigError(
                "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS, use workload "
                "identity or `gcloud auth application-default login`, or pass --anonymous"
            ) from exc
        base = "https://storage.googleapis.com"
        session = transport.AuthorizedSession(credentials)
        project = project or adc_project or "unknown"
    base = base.rstrip("/")
    if not urllib.request.getproxies():
        # requests re-reads proxy variables and .netrc on every request otherwise: ~10% of the
        # CPU of a pass over many small objects. With a proxy configured we keep that behaviour.
        session.trust_env = False
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    client = storage.Client(
        project=project,
        credentials=credentials,
        _http=session,
        client_options={"api_endpoint": base},
    )
    return session, client, base


def _who(session: Any) -> str:
    creds = getattr(session, "credentials", None)
    email = getattr(creds, "service_account_email", None)
    return f"as {email}" if email else "check the caller's IAM roles"


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
