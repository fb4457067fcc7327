"""The bucket, over the GCS JSON API: one paginated listing and pinned, verified reads.

Listing goes through google-cloud-storage; object reads use the same authorized session
directly so that a read can stream, resume at an offset after a reset, and be checked
against the listed crc32c/md5 while the bytes go by.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import hashlib
import logging
import os
import re
import threading
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, TypeVar
from urllib.parse import quote, urlencode

# Loaded with this module (which `--help` never imports), so its ~0.3 s is start-up, paid once
# per process, and not part of every pass's time in the `run` loop's metrics and logs.
import google.cloud.storage  # noqa: F401

from gcs_model_sync import checksum, endpoint, extract, retry
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import (
    AccessDenied,
    BucketNotFound,
    ChecksumMismatch,
    ConfigError,
    Interrupted,
    ObjectChanged,
    RemoteError,
    SyncError,
    TransientError,
    VersionRejected,
)
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.logs import event, log
from gcs_model_sync.throttle import Link

if TYPE_CHECKING:
    import requests

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
LIST_FIELDS = "items(name,generation,size,crc32c,md5Hash,updated,contentEncoding),nextPageToken"
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
CHUNK = 1024 * 1024
COUNT_EVERY = 4 * CHUNK  # progress and metrics lag a read by at most this
T = TypeVar("T")


class Listing(NamedTuple):
    """Every object under the prefix, and the bucket's clock when the listing began."""

    objects: list[RemoteObject]
    server_time: float | None  # the first page's HTTP `Date`; None if no page carried one


# The `Date` of the last JSON API response in this thread (listing is single-threaded per pass).
_response_date = threading.local()


def _note_date(resp: requests.Response, *args: object, **kwargs: object) -> None:
    _response_date.value = resp.headers.get("Date")


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
        self.link = Link(config.connections, config.bwlimit, stop)
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        self._session, self._client, self._base = _connect(
            config.anonymous,
            config.project,
            max(config.workers, config.connections),
            emulator,
            config.endpoint,
            config.endpoint_credentials,
        )
        # A refusal by an endpoint that was sent no credentials says how to send them.
        withheld = (
            config.endpoint
            and not config.anonymous
            and not endpoint.sends_credentials(
                config.endpoint,
                anonymous=False,
                endpoint_credentials=config.endpoint_credentials,
                emulator=emulator,
            )
        )
        self._unsent = (
            f" (no Google credentials were sent to {self._base}, which is not "
            "https://*.googleapis.com: --endpoint-credentials sends them)"
            if withheld
            else ""
        )
        # Requester-pays buckets bill the caller's project: `userProject` on every request.
        self._bucket_ref = self._client.bucket(
            self.source.bucket, user_project=config.billing_project
        )
        self._read_query = urlencode(
            {"alt": "media"}
            | ({"userProject": config.billing_project} if config.billing_project else {})
        )

    # -- listing ---------------------------------------------------------------------
    def list_objects(self) -> Listing:
        """Every object under the prefix, one paginated listing (page token resumes on retry)."""
        objects: list[RemoteObject] = []
        token: str | None = None
        server_time: float | None = None
        first = True
        while True:
            page, token, date = self._retry(
                functools.partial(self._list_page, token), f"listing gs://{self.source.bucket}"
            )
            if first:
                server_time, first = date, False
            objects.extend(page)
            self.stop.check()
            if not token:
                return Listing(objects, server_time)

    def _list_page(self, token: str | None) -> tuple[list[RemoteObject], str | None, float | None]:
        from google.api_core import exceptions as gexc

        self.counters.add(lists=1)
        _response_date.value = None
        it = self._client.list_blobs(
            self._bucket_ref,
            prefix=self.source.prefix or None,
            page_size=self.config.list_page_size,
            page_token=token,
            fields=LIST_FIELDS,
            retry=None,
            timeout=(10, self.config.request_timeout),
        )
        try:
            page = next(it.pages)
            # The page's JSON items as they came: building a Blob for each (which nothing
            # here needs) was a fifth of a no-op pass over 1,000 objects.
            raw = (
                page.raw_page.get("items", ())
                if isinstance(page.raw_page, dict)
                else [b._properties for b in page]
            )
            items = [
                RemoteObject(
                    p["name"],
                    int(p["generation"]),
                    int(p.get("size") or 0),
                    p.get("crc32c"),
                    p.get("md5Hash"),
                    p.get("updated", ""),
                    p.get("contentEncoding"),
                )
                for p in raw
            ]
        except StopIteration:
            return [], None, _http_date(_response_date.value)
        except gexc.NotFound as exc:
            raise BucketNotFound(f"bucket gs://{self.source.bucket} not found") from exc
        except gexc.Forbidden as exc:
            raise AccessDenied(
                f"permission storage.objects.list denied on bucket gs://{self.source.bucket} "
                f"({_who(self._session)}): {_short(exc)}{self._unsent}"
            ) from exc
        except gexc.Unauthorized as exc:
            raise AccessDenied(
                f"credentials rejected listing gs://{self.source.bucket}: {_short(exc)}"
                f"{self._unsent}"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            if retry.is_transient(exc):
                raise TransientError(
                    f"listing gs://{self.source.bucket}: HTTP {exc.code}: {_short(exc)}"
                ) from exc
            raise RemoteError(
                f"listing gs://{self.source.bucket} failed: {_short(exc)}{_hint(str(exc))}"
            ) from exc
        except Exception as exc:
            _raise_explained(exc, f"listing gs://{self.source.bucket}", self._base)
        return items, it.next_page_token, _http_date(_response_date.value)

    # -- reading ---------------------------------------------------------------------
    def open(self, obj: RemoteObject) -> ObjectReader:
        return ObjectReader(self, obj)

    def _get(self, obj: RemoteObject, offset: int, end: int | None = None) -> requests.Response:
        """The object's bytes from `offset` to `end` (exclusive; None: to its end)."""
        url = (
            f"{self._base}/download/storage/v1/b/{quote(self.source.bucket, safe='')}"
            f"/o/{quote(obj.name, safe='')}?{self._read_query}&generation={obj.generation}"
        )
        headers = {"Accept-Encoding": "gzip"}  # never transcode: checksums are of stored bytes
        if end is not None and end < obj.size:
            headers["Range"] = f"bytes={offset}-{end - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"
        self.counters.add(reads=1)
        where = f"gs://{self.source.bucket}/{obj.name}"
        if log.isEnabledFor(logging.DEBUG):  # one request per object: build nothing unasked
            event(
                logging.DEBUG,
                "object_read",
                f"reading {where} (generation {obj.generation}) from byte {offset}",
                object=where,
                offset=offset,
            )
        try:
            resp: requests.Response = self._session.get(
                url, headers=headers, stream=True, timeout=(10, self.config.request_timeout)
            )
        except Exception as exc:
            _raise_explained(exc, f"reading {where}", self._base)
        status = resp.status_code
        if status in (200, 206):
            return resp
        detail = _error_message(resp)
        resp.close()
        if status == 404:
            raise ObjectChanged(
                f"{where}: generation {obj.generation} is gone (changed or deleted mid-pass)"
            )
        if status in (401, 403):
            raise AccessDenied(
                f"{where}: permission storage.objects.get denied ({_who(self._session)})"
                f"{self._unsent}"
            )
        if retry.transient_status(status):
            raise TransientError(f"{where}: HTTP {status}: {detail}")
        raise RemoteError(f"{where}: HTTP {status}: {detail}{_hint(detail)}")

    def tail(self, obj: RemoteObject, start: int) -> bytes | None:
        """The object's bytes from `start` to its end, in one ranged request (for a zip's
        central directory); None when that cannot be had (a proxy that ignores ranges, an
        error: the caller does without)."""

        def read() -> bytes | None:
            self.link.connections.acquire()
            try:
                resp = self._get(obj, start)
                try:
                    return bytes(resp.content) if not start or resp.status_code == 206 else None
                finally:
                    resp.close()
            finally:
                self.link.connections.release()

        try:
            return self._retry(read, f"reading the end of gs://{self.source.bucket}/{obj.name}")
        except Interrupted:
            raise
        except SyncError:
            return None

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        """One request's budget. When it runs out the failure is final (RemoteError, one
        line naming the bucket or object): nothing above retries the same request again."""
        return retry.call(
            fn,
            what=what,
            attempts=self.config.retry_attempts,
            deadline=self.config.retry_deadline,
            stop=self.stop,
            gave_up=functools.partial(self._gave_up, what),
        )

    def _gave_up(self, what: str, exc: BaseException, how: str) -> RemoteError:
        reason = str(exc) if isinstance(exc, SyncError) else f"{what}: {_plain(exc)}"
        return RemoteError(
            f"{reason.rstrip('.')}; {how} (--retry-attempts {self.config.retry_attempts}, "
            f"--retry-deadline {self.config.retry_deadline:g}s)"
        )


class ObjectReader:
    """A read of one object generation in chunks that resumes after resets and checks size
    and crc32c (or md5) at EOF, raising ChecksumMismatch instead of returning bad bytes.

    A reader of a byte range (`start`, `end`) resumes the same way but checks nothing: the
    caller checksums the range itself and the whole object from its ranges. Each open response
    holds one of the process's connections, and every byte read counts against --bwlimit.
    """

    def __init__(
        self, bucket: Bucket, obj: RemoteObject, start: int = 0, end: int | None = None
    ) -> None:
        self._bucket = bucket
        self.obj = obj
        self.offset = start
        self.end = obj.size if end is None else end
        self._ranged = start > 0 or self.end < obj.size
        self._resp: requests.Response | None = None
        self._crc = 0 if obj.crc32c and not self._ranged else None
        whole_md5 = not obj.crc32c and obj.md5 and not self._ranged
        self._md5 = hashlib.md5(usedforsecurity=False) if whole_md5 else None
        self._verified = False
        self._uncounted = 0  # bytes read, added to the shared counters in batches

    @property
    def where(self) -> str:
        return f"gs://{self._bucket.source.bucket}/{self.obj.name}"

    def content(self) -> ObjectReader | GzipDecoded:
        """What the object holds, as `gcloud storage cp` and TF Serving give it: the stored
        bytes themselves (this reader: the plain path, no extra copy), or, for an object
        stored with `Content-Encoding: gzip` (`gsutil cp -Z`), those bytes decoded as they
        stream. Either way `verify()` checks size and checksum against the stored bytes.

        Any other Content-Encoding rejects the version before a byte is read: installing
        bytes that are still encoded is the silent failure this exists to prevent.
        """
        encoding = (self.obj.encoding or "").strip().lower()
        if encoding in ("", "identity"):
            return self
        if encoding in ("gzip", "x-gzip"):
            return GzipDecoded(self)
        raise VersionRejected(
            f"{self.where}: stored with Content-Encoding {self.obj.encoding!r}, which cannot "
            "be decoded (only gzip is supported)"
        )

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes (a chunk when negative); b"" once all were read and checked."""
        want = CHUNK if size < 0 else size
        if self.offset >= self.end:
            self._finish()
            return b""
        self._bucket.stop.check()
        data = self._bucket._retry(lambda: self._read_some(want), f"reading {self.where}")
        self.offset += len(data)
        self._uncounted += len(data)
        if self._uncounted >= COUNT_EVERY:
            self._count()
        self._bucket.link.took(len(data))
        if self._crc is not None:
            self._crc = checksum.extend(self._crc, data)
        elif self._md5:
            self._md5.update(data)
        return data

    def _read_some(self, want: int) -> bytes:
        try:
            if self._resp is None:
                self._open()
                assert self._resp is not None
            data: bytes = self._resp.raw.read(
                min(want, self.end - self.offset), decode_content=False
            )
        except SyncError:
            raise  # already explained (the request's status, its credentials)
        except Exception as e:
            if not retry.is_transient(e, streaming=True):
                raise
            self._drop()
            raise TransientError(f"{self.where}: {_plain(e)}") from e
        if not isinstance(data, bytes) or not data:  # the body ended early: resume from here
            self._drop()
            raise TransientError(f"{self.where}: body ended at byte {self.offset}")
        return data

    def _open(self) -> None:
        connections = self._bucket.link.connections
        connections.acquire()
        try:
            self._resp = self._bucket._get(self.obj, self.offset, self.end)
        except BaseException:
            connections.release()
            raise
        if self.offset and self._resp.status_code == 200:
            self._skip_to_offset(self._resp)

    def _skip_to_offset(self, resp: requests.Response) -> None:
        """`Range: bytes=OFFSET-` answered 200 with the whole body (a proxy or cache that
        ignores ranges): read this object again from byte 0, discarding the bytes before
        OFFSET. The consumer already has those bytes (a streaming extraction or a file
        half-written), and the checksum already covers them, so appending the whole body
        would duplicate them and restarting the consumer is not possible; what follows
        OFFSET is then checked and delivered exactly once, as after a 206.
        """
        left = self.offset
        while left:
            self._bucket.stop.check()
            junk = resp.raw.read(min(CHUNK, left), decode_content=False)
            if not isinstance(junk, bytes) or not junk:
                break  # too short: the caller's read sees the end and resumes again
            left -= len(junk)

    def _finish(self) -> None:
        if self._verified:
            return
        self._drop()
        where = f"gs://{self._bucket.source.bucket}/{self.obj.name}"
        if self._ranged:
            self._verified = True
            return
        if self.offset != self.obj.size:
            raise ChecksumMismatch(f"{where}: got {self.offset} bytes, listed {self.obj.size}")
        if self._crc is not None and checksum.b64(self._crc) != self.obj.crc32c:
            raise ChecksumMismatch(f"{where}: crc32c mismatch, content not published")
        if self._md5 and base64.b64encode(self._md5.digest()).decode() != self.obj.md5:
            raise ChecksumMismatch(f"{where}: md5 mismatch, content not published")
        self._verified = True

    def verify(self) -> None:
        """Drain whatever the consumer did not need, then check the checksum."""
        while self.read(CHUNK):
            pass
        self._finish()

    def _count(self) -> None:
        """Add what was read to the shared counters: batched, since 16 readers taking their
        lock for every chunk spent more time on it than on the bytes."""
        self._bucket.counters.add(nbytes=self._uncounted)
        self._uncounted = 0

    def _drop(self) -> None:
        self._count()
        if self._resp is not None:
            self._resp.close()
            self._resp = None
            self._bucket.link.connections.release()

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GzipDecoded:
    """An object stored with `Content-Encoding: gzip`, decoded as its stored bytes stream by.

    extract.Gunzip returns at most `size` decoded bytes per read, so a gzip bomb costs no
    memory (and what is written counts against --max-version-size), and b"" only at the true
    end, after the stored bytes were read to their end and checked. A body that does not
    decode is first checked as stored: damage in transit is a ChecksumMismatch (retried),
    intact bytes that are not gzip reject the version, naming the object.
    """

    def __init__(self, reader: ObjectReader) -> None:
        self.reader = reader
        self._gunzip = extract.Gunzip(reader)

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._gunzip.read(size)
        except (zlib.error, EOFError) as exc:
            self.reader.verify()
            raise VersionRejected(
                f"{self.reader.where}: stored with Content-Encoding gzip but the body does "
                f"not decode ({exc})"
            ) from exc

    def verify(self) -> None:
        """Decode to the end (gzip's own CRC-32 and length are checked there), then check the
        stored bytes' size and checksum."""
        while self.read(CHUNK):
            pass
        self.reader.verify()


@functools.lru_cache(maxsize=4)
def _connect(
    anonymous: bool,
    project: str | None,
    connections: int,
    emulator: str | None,
    endpoint_url: str | None = None,
    endpoint_credentials: bool = False,
) -> tuple[Any, Any, str]:
    """Session, storage client and base URL (without any user:password) for the emulator, a
    public bucket, or ADC.

    `endpoint_url` replaces storage.googleapis.com (Private Service Connect, a proxy); Google
    credentials go to it only when it is Google's or `endpoint_credentials` says so (see
    endpoint.py). STORAGE_EMULATOR_HOST, without an endpoint, drops them as the library does.
    A user:password in the URL becomes the session's basic auth, so that no URL handed to the
    libraries (and no message they build from one) carries it.

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
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=connections + 4, max_retries=0)
    if endpoint_url:
        raw = endpoint_url
    elif emulator:
        raw = emulator if "://" in emulator else f"http://{emulator}"
    else:
        raw = DEFAULT_ENDPOINT
    base, basic_auth = endpoint.split_userinfo(raw)
    sends = endpoint.sends_credentials(
        endpoint_url,
        anonymous=anonymous,
        endpoint_credentials=endpoint_credentials,
        emulator=emulator,
    )
    if sends:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        transport: Any = importlib.import_module("google.auth.transport.requests")

        try:
            credentials, adc_project = google.auth.default(scopes=[READ_ONLY_SCOPE])
        except DefaultCredentialsError as exc:
            if key_file := os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
                raise ConfigError(
                    f"GOOGLE_APPLICATION_CREDENTIALS={key_file} cannot be used: {_auth_reason(exc)}"
                ) from exc
            raise ConfigError(
                "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS, use workload "
                "identity or `gcloud auth application-default login`, or pass --anonymous"
            ) from exc
        session: Any = transport.AuthorizedSession(credentials)
        project = project or adc_project or "unknown"
    else:
        credentials = AnonymousCredentials()
        session = requests.Session()
        project = project or ("emulator" if emulator and not endpoint_url else "anonymous")
        if endpoint_url and not anonymous:
            event(
                logging.INFO,
                "endpoint",
                f"--endpoint {base} is not https://*.googleapis.com: no Google credentials "
                "are sent to it (--endpoint-credentials sends them)",
                endpoint=base,
            )
    if basic_auth is not None:  # a proxy's basic auth; endpoint.problem refused it beside a token
        session.auth = basic_auth
    base = base.rstrip("/")
    if not urllib.request.getproxies():
        # requests re-reads proxy variables and .netrc on every request otherwise: ~10% of the
        # CPU of a pass over many small objects. With a proxy configured we keep that behaviour.
        session.trust_env = False
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.hooks["response"].append(_note_date)
    client = storage.Client(
        project=project,
        credentials=credentials,
        _http=session,
        client_options={"api_endpoint": base},
    )
    return session, client, base


def _http_date(value: str | None) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def _error_message(resp: requests.Response) -> str:
    """The message of a JSON API error body, or the HTTP reason."""
    try:
        message = resp.json()["error"]["message"]
    except Exception:
        message = resp.reason
    return str(message or resp.status_code).splitlines()[0][:300]


def _hint(message: str) -> str:
    if "requester pays" in message.lower() or "user project" in message.lower():
        return " (a requester-pays bucket: pass --billing-project)"
    return ""


def _raise_explained(exc: Exception, what: str, base: str) -> NoReturn:
    """Re-raise `exc` from below google-cloud-storage as the one-line error it means."""
    err = _transport_error(exc, what, base)
    if err is exc:
        raise exc
    raise err from exc


def _transport_error(exc: Exception, what: str, base: str) -> Exception:
    """Errors from below google-cloud-storage, as one line: TLS, credential and protocol
    failures are final, what retry.is_transient accepts is retried. Anything else (and what
    is already one line) is left as it is."""
    import requests
    from google.auth import exceptions as auth_exc

    if isinstance(exc, SyncError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError):
        return RemoteError(
            f"{what}: TLS failed for {base}: {_ssl_reason(exc)} (a private CA: set "
            "REQUESTS_CA_BUNDLE to its PEM bundle)"
        )
    if isinstance(exc, auth_exc.RefreshError):
        return AccessDenied(f"{what}: could not get an access token: {_short(exc)}")
    if retry.is_transient(exc):
        if isinstance(exc, auth_exc.TransportError):
            return TransientError(f"{what}: token request failed: {_short(exc)}")
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return TransientError(f"{what}: the answer from {base} broke off: {_plain(exc)}")
        return TransientError(f"{what}: cannot reach {base}: {_ssl_reason(exc)}")
    if isinstance(exc, auth_exc.GoogleAuthError):  # unusable credentials: a retry cannot help
        return AccessDenied(f"{what}: the credentials cannot be used: {_short(exc)}")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return RemoteError(
            f"{what}: {base} did not answer as the Cloud Storage JSON API does (check --endpoint)"
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return RemoteError(f"{what}: request to {base} failed: {_plain(exc)} (check --endpoint)")
    return exc


def _plain(exc: BaseException) -> str:
    """A transport error in its own words, without urllib3's wrapping (`HTTPConnectionPool(
    host=…, port=…): `, `Max retries exceeded with url: … (Caused by …)`, a tuple's repr)."""
    text = _short(exc)
    if text.startswith("(") or "Max retries exceeded" in text:
        return _ssl_reason(exc)
    return re.sub(r"^HTTPS?ConnectionPool\([^)]*\): ", "", text)


def _ssl_reason(exc: BaseException) -> str:
    """The innermost reason (urllib3 wraps it as `Max retries exceeded ... (Caused by ...)`)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    reason = getattr(exc, "reason", None) or exc
    return _short(reason if isinstance(reason, BaseException) else exc)


def _who(session: Any) -> str:
    creds = getattr(session, "credentials", None)
    email = getattr(creds, "service_account_email", None)
    return f"as {email}" if email else "check the caller's IAM roles"


def _auth_reason(exc: BaseException) -> str:
    """google-auth's sentence, whose args may be (sentence, cause): `File k.json is not a valid
    json file (Expecting value: line 1 column 1 (char 0))`."""
    parts = [str(a).strip().rstrip(".") for a in exc.args if str(a).strip()] or [type(exc).__name__]
    head, *causes = parts
    return (f"{head} ({'; '.join(causes)})" if causes else head).splitlines()[0][:300]


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc)
    # google-cloud-core prefixes "GET <the whole request URL>: "; Google's sentence follows.
    text = re.sub(r"^[A-Z]+ https?://\S+: ", "", text)
    return text.splitlines()[0][:300] if text else type(exc).__name__
