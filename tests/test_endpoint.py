"""Which endpoints get our Google credentials, and what a user:password in one means."""

from __future__ import annotations

import pytest

from gcs_model_sync.endpoint import is_google, problem, sends_credentials, split_userinfo


@pytest.mark.parametrize(
    "url",
    [
        "https://storage.googleapis.com",
        "https://storage.googleapis.com/",
        "https://STORAGE.GoogleAPIs.com.",
        "https://private.googleapis.com",
        "https://restricted.googleapis.com",
        "https://storage-myendpoint.p.googleapis.com",  # Private Service Connect
        "https://storage.mtls.googleapis.com",
        "https://storage.us-east1.rep.googleapis.com:443",  # a regional endpoint
    ],
)
def test_google_endpoints(url: str) -> None:
    assert is_google(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://storage.googleapis.com",  # a token in clear text is a token given away
        "https://storage.googleapis.com.evil.example",
        "https://evilgoogleapis.com",
        "https://googleapis.com@evil.example",
        "https://gcs-proxy.corp.example",
        "http://127.0.0.1:4443",
        "https://[::1]:8443",
        "not a url",
    ],
)
def test_other_endpoints(url: str) -> None:
    assert not is_google(url)


def test_credentials_go_to_google_by_default_and_elsewhere_only_when_asked() -> None:
    assert sends_credentials(None, anonymous=False, endpoint_credentials=False, emulator=None)
    google = "https://storage-x.p.googleapis.com"
    assert sends_credentials(google, anonymous=False, endpoint_credentials=False, emulator=None)
    proxy = "http://127.0.0.1:9"
    assert not sends_credentials(proxy, anonymous=False, endpoint_credentials=False, emulator=None)
    assert sends_credentials(proxy, anonymous=False, endpoint_credentials=True, emulator=None)
    assert not sends_credentials(proxy, anonymous=True, endpoint_credentials=False, emulator=None)
    # STORAGE_EMULATOR_HOST alone drops credentials, as google-cloud-storage does
    local = "http://127.0.0.1:4443"
    assert not sends_credentials(None, anonymous=False, endpoint_credentials=True, emulator=local)


def test_userinfo_is_taken_out_of_the_url() -> None:
    assert split_userinfo("http://u%40x:p%3Aw@h:1/root") == ("http://h:1/root", ("u@x", "p:w"))
    assert split_userinfo("http://u@h") == ("http://h", ("u", ""))
    assert split_userinfo("https://h/") == ("https://h/", None)


def test_a_password_beside_google_credentials_is_a_usage_error_that_hides_it() -> None:
    url = "https://admin:hunter2@storage.googleapis.com"
    message = problem(url, anonymous=False, endpoint_credentials=False)
    assert message is not None
    assert "hunter2" not in message
    assert "Authorization header" in message
    assert problem(url, anonymous=True, endpoint_credentials=False) is None
    proxy = "http://admin:hunter2@127.0.0.1:9"
    assert problem(proxy, anonymous=False, endpoint_credentials=False) is None
    assert problem(proxy, anonymous=False, endpoint_credentials=True) is not None
    assert problem("ftp://admin:hunter2@h", anonymous=True, endpoint_credentials=False) == (
        "--endpoint must be an http:// or https:// URL, got 'ftp://<redacted>@h'"
    )
    # --anonymous wins: nothing is sent, so a user:password has the header to itself
    assert problem(proxy, anonymous=True, endpoint_credentials=True) is None
