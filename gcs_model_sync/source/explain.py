"""Failures of a request to the bucket, as the one line each means.

The libraries below (google-cloud-storage, google-auth, requests, urllib3) each wrap an error
their own way; these say what happened in the words of whatever was innermost, name the
request, and decide final or retried by retry.is_transient.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NoReturn

from gcs_model_sync import retry
from gcs_model_sync.errors import AccessDenied, RemoteError, SyncError, TransientError

if TYPE_CHECKING:
    import requests


def raise_explained(exc: Exception, what: str, base: str) -> NoReturn:
    """Re-raise `exc` from below google-cloud-storage as the one-line error it means."""
    err = transport_error(exc, what, base)
    if err is exc:
        raise exc
    raise err from exc


def transport_error(exc: Exception, what: str, base: str) -> Exception:
    """Errors from below google-cloud-storage, as one line: TLS, credential and protocol
    failures are final, what retry.is_transient accepts is retried. Anything else (and what
    is already one line) is left as it is."""
    import requests
    from google.auth import exceptions as auth_exc

    if isinstance(exc, SyncError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError):
        return RemoteError(
            f"{what}: TLS failed for {base}: {innermost(exc)} (a private CA: set "
            "REQUESTS_CA_BUNDLE to its PEM bundle)"
        )
    if isinstance(exc, auth_exc.RefreshError):
        return AccessDenied(f"{what}: could not get an access token: {short(exc)}")
    if retry.is_transient(exc):
        if isinstance(exc, auth_exc.TransportError):
            return TransientError(f"{what}: token request failed: {short(exc)}")
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return TransientError(f"{what}: the answer from {base} broke off: {plain(exc)}")
        return TransientError(f"{what}: cannot reach {base}: {innermost(exc)}")
    if isinstance(exc, auth_exc.GoogleAuthError):  # unusable credentials: a retry cannot help
        return AccessDenied(f"{what}: the credentials cannot be used: {short(exc)}")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return RemoteError(
            f"{what}: {base} did not answer as the Cloud Storage JSON API does (check --endpoint)"
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return RemoteError(f"{what}: request to {base} failed: {plain(exc)} (check --endpoint)")
    return exc


def error_message(resp: requests.Response) -> str:
    """The message of a JSON API error body, or the HTTP reason."""
    try:
        message = resp.json()["error"]["message"]
    except Exception:
        message = resp.reason
    return str(message or resp.status_code).splitlines()[0][:300]


def hint(message: str) -> str:
    """What to do about a refusal whose message names a requester-pays bucket."""
    if "requester pays" in message.lower() or "user project" in message.lower():
        return " (a requester-pays bucket: pass --billing-project)"
    return ""


def plain(exc: BaseException) -> str:
    """A transport error in its own words, without urllib3's wrapping (`HTTPConnectionPool(
    host=…, port=…): `, `Max retries exceeded with url: … (Caused by …)`, a tuple's repr)."""
    text = short(exc)
    if text.startswith("(") or "Max retries exceeded" in text:
        return innermost(exc)
    return re.sub(r"^HTTPS?ConnectionPool\([^)]*\): ", "", text)


def innermost(exc: BaseException) -> str:
    """The innermost reason (urllib3 wraps it as `Max retries exceeded ... (Caused by ...)`)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    reason = getattr(exc, "reason", None) or exc
    return short(reason if isinstance(reason, BaseException) else exc)


def short(exc: BaseException) -> str:
    """An error's first line, at most 300 characters, without a request URL in front."""
    text = str(getattr(exc, "message", None) or exc)
    # google-cloud-core prefixes "GET <the whole request URL>: "; Google's sentence follows.
    text = re.sub(r"^[A-Z]+ https?://\S+: ", "", text)
    return text.splitlines()[0][:300] if text else type(exc).__name__
