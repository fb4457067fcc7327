"""A failed request as one line: final or retried, in the innermost error's own words."""

from __future__ import annotations

import pytest
import requests
import urllib3
from google.auth import exceptions as auth_exc

from gcs_model_sync.errors import AccessDenied, RemoteError, TransientError
from gcs_model_sync.source.explain import hint, plain, raise_explained, short, transport_error

BASE = "https://storage.example"


def wrapped(outer: Exception, inner: BaseException) -> Exception:
    """`outer` raised from `inner`, as urllib3 and requests chain them."""
    outer.__cause__ = inner
    return outer


def test_trouble_reaching_the_server_is_retried_in_its_innermost_words() -> None:
    exc = wrapped(
        requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='h', port=443): Max retries exceeded with url: /x"
        ),
        ConnectionRefusedError("[Errno 111] Connection refused"),
    )
    err = transport_error(exc, "listing gs://b", BASE)
    assert isinstance(err, TransientError)
    assert str(err) == f"listing gs://b: cannot reach {BASE}: [Errno 111] Connection refused"
    broke = transport_error(requests.exceptions.ChunkedEncodingError("gone"), "reading o", BASE)
    assert isinstance(broke, TransientError)
    assert str(broke) == f"reading o: the answer from {BASE} broke off: gone"
    token = transport_error(auth_exc.TransportError("timed out"), "reading o", BASE)
    assert isinstance(token, TransientError)
    assert str(token) == "reading o: token request failed: timed out"


def test_tls_credential_and_protocol_failures_are_final() -> None:
    tls = transport_error(requests.exceptions.SSLError("certificate verify failed"), "w", BASE)
    assert isinstance(tls, RemoteError)
    assert str(tls) == (
        f"w: TLS failed for {BASE}: certificate verify failed (a private CA: set "
        "REQUESTS_CA_BUNDLE to its PEM bundle)"
    )
    refresh = transport_error(auth_exc.RefreshError("invalid_grant"), "w", BASE)
    assert isinstance(refresh, AccessDenied)
    assert str(refresh) == "w: could not get an access token: invalid_grant"
    unusable = transport_error(auth_exc.MalformedError("no key"), "w", BASE)
    assert isinstance(unusable, AccessDenied)
    not_json = transport_error(requests.exceptions.JSONDecodeError("x", "doc", 0), "w", BASE)
    assert str(not_json) == (
        f"w: {BASE} did not answer as the Cloud Storage JSON API does (check --endpoint)"
    )
    other = transport_error(requests.exceptions.InvalidURL("bad url"), "w", BASE)
    assert str(other) == f"w: request to {BASE} failed: bad url (check --endpoint)"


def test_what_is_not_a_transport_error_is_left_as_it_is() -> None:
    bug = ValueError("bug")
    assert transport_error(bug, "w", BASE) is bug
    already = TransientError("gs://b/o: HTTP 503: busy")
    assert transport_error(already, "w", BASE) is already
    with pytest.raises(ValueError, match=r"^bug$"):
        raise_explained(bug, "w", BASE)
    with pytest.raises(TransientError) as info:
        raise_explained(urllib3.exceptions.ProtocolError("reset"), "w", BASE)
    assert isinstance(info.value.__cause__, urllib3.exceptions.ProtocolError)


def test_messages_lose_the_libraries_wrapping() -> None:
    assert short(Exception("GET https://h/storage/v1/b/x?a=1: Not Found\nmore")) == "Not Found"
    assert short(Exception("")) == "Exception"
    assert short(Exception("x" * 400)) == "x" * 300
    assert plain(Exception("HTTPConnectionPool(host='h', port=80): Read timed out.")) == (
        "Read timed out."
    )
    assert hint("Bucket is a requester pays bucket but no user project provided.") == (
        " (a requester-pays bucket: pass --billing-project)"
    )
    assert hint("Not Found") == ""
