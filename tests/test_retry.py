"""The retry policy: what is retried, the original error at the end, and a stop cuts waits."""

from __future__ import annotations

import threading
import time

import pytest

from gcs_model_sync.errors import AccessDenied, ChecksumMismatch, Interrupted, TransientError
from gcs_model_sync.retry import Budget, StopToken, call, is_transient, transient_status


class Flaky:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors, self.calls = errors, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_transient_errors_are_retried_until_success() -> None:
    fn = Flaky([TransientError("503"), ChecksumMismatch("crc"), TransientError("reset")])
    assert call(fn, what="t", budget=Budget(5, 30, StopToken(), 0.01)) == "ok"
    assert fn.calls == 4


def test_permanent_errors_are_not_retried() -> None:
    fn = Flaky([AccessDenied("403")])
    with pytest.raises(AccessDenied):
        call(fn, what="t", budget=Budget(5, 30, StopToken(), 0.01))
    assert fn.calls == 1


def test_the_original_error_is_raised_when_attempts_run_out() -> None:
    fn = Flaky([TransientError(f"503 #{i}") for i in range(10)])
    with pytest.raises(TransientError, match="503 #2"):
        call(fn, what="t", budget=Budget(3, 30, StopToken(), 0.01))
    assert fn.calls == 3


def test_a_stop_cuts_the_backoff_short() -> None:
    stop = StopToken()
    fn = Flaky([TransientError("503")] * 10)
    threading.Timer(0.2, stop.set, args=(15,)).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        call(fn, what="t", budget=Budget(10, 600, stop, 60))
    assert time.monotonic() - started < 5


def test_library_errors_are_classified() -> None:
    import requests
    from google.api_core import exceptions as gexc

    assert is_transient(requests.exceptions.ConnectionError())
    assert is_transient(requests.exceptions.ReadTimeout())
    assert is_transient(gexc.TooManyRequests("429"))
    assert is_transient(gexc.ServiceUnavailable("503"))
    assert not is_transient(gexc.Forbidden("403"))
    assert not is_transient(gexc.NotFound("404"))
    assert not is_transient(ValueError("bug"))


def test_429_and_every_5xx_are_transient_whichever_request_saw_them() -> None:
    """One rule for a listing (the library's exception) and a read (the status itself)."""
    from google.api_core import exceptions as gexc

    for status in (429, 500, 501, 502, 503, 504, 507, 522, 599):
        assert transient_status(status)
        assert is_transient(gexc.from_http_status(status, "x"))
    for status in (400, 401, 403, 404, 408, 412):
        assert not transient_status(status)
        assert not is_transient(gexc.from_http_status(status, "x"))


def test_trouble_reaching_the_server_is_transient_and_tls_is_not() -> None:
    import requests
    import urllib3
    from google.auth import exceptions as auth_exc

    assert is_transient(ConnectionResetError())
    assert is_transient(TimeoutError())
    assert is_transient(urllib3.exceptions.ProtocolError("reset"))
    assert is_transient(requests.exceptions.ChunkedEncodingError())
    assert is_transient(auth_exc.TransportError("token endpoint down"))
    assert not is_transient(requests.exceptions.SSLError("certificate verify failed"))
    assert not is_transient(auth_exc.RefreshError("invalid_grant"))
    assert not is_transient(requests.exceptions.InvalidURL("x"))


def test_while_a_body_streams_any_transport_error_is_transient() -> None:
    """A body that breaks off mid-read resumes at its offset, whatever broke it."""
    import requests
    import urllib3

    for exc in (
        requests.exceptions.SSLError("bad record mac"),
        urllib3.exceptions.SSLError("bad record mac"),
        OSError("EBADF"),
        requests.exceptions.RequestException("x"),
    ):
        assert is_transient(exc, streaming=True)
    assert not is_transient(ValueError("bug"), streaming=True)


def test_gave_up_turns_an_exhausted_transient_error_into_a_final_one() -> None:
    fn = Flaky([TransientError(f"503 #{i}") for i in range(10)])
    with pytest.raises(AccessDenied, match=r"^503 #2; gave up after 3 tries in \d") as info:
        call(
            fn,
            what="t",
            budget=Budget(3, 30, StopToken(), 0.01),
            gave_up=lambda exc, how: AccessDenied(f"{exc}; {how}"),
        )
    assert isinstance(info.value.__cause__, TransientError)
    assert fn.calls == 3


def test_gave_up_leaves_errors_that_are_not_retried_alone() -> None:
    fn = Flaky([AccessDenied("403")])
    with pytest.raises(AccessDenied, match=r"^403$"):
        call(
            fn,
            what="t",
            budget=Budget(3, 30, StopToken(), 0.01),
            gave_up=lambda exc, how: ChecksumMismatch(f"{exc}; {how}"),
        )
    assert fn.calls == 1


def test_retry_on_narrows_what_is_retried() -> None:
    """fetch.stage retries a whole version on a checksum mismatch only: a request that
    failed has already spent its own budget."""
    only_checksums = Flaky([ChecksumMismatch("crc"), TransientError("503")])
    with pytest.raises(TransientError, match="503"):
        call(
            only_checksums,
            what="t",
            budget=Budget(5, 30, StopToken(), 0.01),
            retry_on=lambda exc: isinstance(exc, ChecksumMismatch),
        )
    assert only_checksums.calls == 2
