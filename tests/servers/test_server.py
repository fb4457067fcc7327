"""The model server client against the stand-in, over loopback HTTP."""

from __future__ import annotations

import base64
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcs_model_sync.errors import ConfigError
from gcs_model_sync.retry import StopToken
from gcs_model_sync.servers.server import Kind, ModelServer, ServerError, server_name
from tests.support.modelserver import ModelServerStandIn, publish
from tests.support.probes import wait_for
from tests.support.standin import StandInHandler, StandInServer


@pytest.fixture
def standin(repo: Path, request: pytest.FixtureRequest) -> Iterator[ModelServerStandIn]:
    """A stand-in of the kind the test is parametrized with (`kind`), polling every 20 ms."""
    with ModelServerStandIn(repo, request.param, poll=0.02) as server:
        yield server


def client(server: ModelServerStandIn, timeout: float = 2.0, poll: float = 0.5) -> ModelServer:
    return ModelServer(server.url, Kind(server.kind), timeout, poll)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ALL_KINDS = pytest.mark.parametrize("standin", list(Kind), indirect=True)
POLL_KINDS = pytest.mark.parametrize("standin", [Kind.TFSERVING, Kind.KSERVE], indirect=True)


# what the server serves


@pytest.mark.parametrize("standin", [Kind.TFSERVING], indirect=True)
def test_tf_serving_reports_the_newest_available_version(
    repo: Path, standin: ModelServerStandIn
) -> None:
    server = client(standin)
    publish(repo, "resnet", 1)
    wait_for(lambda: standin.served("resnet") == 1, 2, "version 1")
    assert server.served("resnet", [1]) == 1

    publish(repo, "resnet", 2)
    wait_for(lambda: standin.served("resnet") == 2, 2, "version 2")

    assert server.served("resnet", [1, 2]) == 2
    assert standin.requests[-1] == ("GET", "/v1/models/resnet")


@pytest.mark.parametrize("standin", [Kind.TFSERVING], indirect=True)
def test_tf_serving_answers_only_among_the_candidates(
    repo: Path, standin: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 3)
    wait_for(lambda: standin.served("resnet") == 3, 2, "version 3")

    assert client(standin).served("resnet", [1, 2]) is None


@pytest.mark.parametrize("standin", [Kind.KSERVE], indirect=True)
def test_kserve_asks_newest_first_and_stops_at_the_first_ready_version(
    repo: Path, standin: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 1)
    publish(repo, "resnet", 2)
    wait_for(lambda: standin.served("resnet") == 2, 2, "version 2")
    before = len(standin.requests)

    assert client(standin).served("resnet", [1, 3, 2]) == 2
    assert standin.requests[before:] == [
        ("GET", "/v2/models/resnet/versions/3/ready"),
        ("GET", "/v2/models/resnet/versions/2/ready"),
    ]


@ALL_KINDS
def test_an_unknown_model_is_served_in_no_version(standin: ModelServerStandIn) -> None:
    assert client(standin).served("nope", [1, 2]) is None
    assert standin.requests  # it was asked


@POLL_KINDS
def test_a_broken_version_is_never_reported(repo: Path, standin: ModelServerStandIn) -> None:
    publish(repo, "resnet", 1)
    wait_for(lambda: standin.served("resnet") == 1, 2, "version 1")
    standin.broken.add(("resnet", 2))
    publish(repo, "resnet", 2)
    wait_for(lambda: standin.states("resnet").get(2) == "END", 2, "version 2 to fail")

    assert client(standin).served("resnet", [1, 2]) == 1


@pytest.mark.parametrize("standin", [Kind.TFSERVING], indirect=True)
def test_names_are_percent_encoded(repo: Path, standin: ModelServerStandIn) -> None:
    publish(repo, "team a#1", 1)
    wait_for(lambda: standin.served("team a#1") == 1, 2, "version 1")

    assert client(standin).served("team a#1", [1]) == 1
    assert standin.requests[-1] == ("GET", "/v1/models/team%20a%231")


# Triton in explicit model-control mode


@pytest.mark.parametrize("standin", [Kind.TRITON], indirect=True)
def test_triton_explicit_serves_a_version_once_asked_to_load_it(
    repo: Path, standin: ModelServerStandIn
) -> None:
    server = client(standin)
    publish(repo, "resnet", 1)
    assert server.served("resnet", [1]) is None

    server.load("resnet")

    assert server.served("resnet", [1]) == 1
    assert ("POST", "/v2/repository/models/resnet/load") in standin.requests


@pytest.mark.parametrize("standin", [Kind.TRITON], indirect=True)
def test_a_failing_triton_load_raises_the_servers_message_on_one_line(
    repo: Path, standin: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 1)
    standin.broken.add(("resnet", 1))

    with pytest.raises(ServerError) as failed:
        client(standin).load("resnet")
    with pytest.raises(ServerError) as unknown:
        client(standin).load("nope")

    assert str(failed.value) == (
        f"--server {standin.url}: model resnet: load failed: "
        "failed to load 'resnet', versions that are not available: 1"
    )
    assert str(unknown.value) == (
        f"--server {standin.url}: model nope: load failed: "
        "failed to load 'nope', failed to poll from model repository"
    )


@POLL_KINDS
def test_load_asks_nothing_of_servers_that_poll(standin: ModelServerStandIn) -> None:
    client(standin).load("resnet")
    assert standin.requests == []


# servers that cannot answer


@ALL_KINDS
def test_a_down_server_raises_naming_the_url_and_the_model(
    repo: Path, standin: ModelServerStandIn
) -> None:
    standin.down = True
    with pytest.raises(ServerError) as caught:
        client(standin).served("resnet", [1])
    assert (
        str(caught.value) == f"--server {standin.url}: model resnet: HTTP 503: no healthy upstream"
    )


@pytest.mark.parametrize("kind", list(Kind))
def test_a_closed_port_raises_naming_the_url_and_the_model(kind: Kind) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    server = ModelServer(url, kind)
    with pytest.raises(ServerError) as caught:
        server.served("resnet", [1])
    assert str(caught.value) == f"--server {url}: model resnet: connection refused"


class _Fixed(StandInServer):
    """Answers every request with one fixed reply, and notes the paths it was asked."""

    def __init__(self, status: int, body: bytes, delay: float = 0.0) -> None:
        super().__init__()
        self.handler = _FixedHandler
        self.reply = (status, body)
        self.delay = delay
        self.paths: list[str] = []


class _FixedHandler(StandInHandler):
    def do_GET(self) -> None:
        fixed = self.server.standin
        assert isinstance(fixed, _Fixed)
        fixed.paths.append(self.path)
        time.sleep(fixed.delay)
        self.answer(fixed.reply[0], fixed.reply[1], "application/json")

    do_POST = do_GET


@pytest.mark.parametrize(
    "body",
    [b"<html>It works!</html>", b'{"models": []}', b'{"model_version_status": {"1": 2}}'],
    ids=["html", "other-json", "wrong-shape"],
)
def test_a_tf_serving_answer_that_is_not_a_model_status_raises(body: bytes) -> None:
    with _Fixed(200, body) as fixed:
        server = ModelServer(fixed.url + "/serving/", Kind.TFSERVING)
        with pytest.raises(ServerError, match=r"model resnet: not a TF Serving model status: "):
            server.served("resnet", [1])
        assert fixed.paths == ["/serving/v1/models/resnet"]


def test_a_server_that_does_not_answer_in_time_raises() -> None:
    with _Fixed(200, b"", delay=1.0) as fixed:
        server = ModelServer(fixed.url, Kind.KSERVE, timeout=0.2)
        with pytest.raises(ServerError) as caught:
            server.served("resnet", [1])
        assert str(caught.value) == f"--server {fixed.url}: model resnet: no answer within 0.2s"


@pytest.mark.parametrize("status", [401, 403, 429])
def test_a_refusal_is_an_error_not_a_model_that_is_not_ready(status: int) -> None:
    with (
        _Fixed(status, b'{"error": "no"}') as fixed,
        pytest.raises(ServerError, match=rf"model resnet: HTTP {status}: no$"),
    ):
        ModelServer(fixed.url, Kind.KSERVE).served("resnet", [1])


@pytest.mark.parametrize("url", ["127.0.0.1:8501", "ftp://host/", "http://", "http://h:port"])
def test_a_url_that_is_not_http_is_a_usage_error(url: str) -> None:
    with pytest.raises(ConfigError, match="--server"):
        ModelServer(url, Kind.TFSERVING)


# waiting for a rollout


@POLL_KINDS
def test_wait_until_served_returns_once_the_version_is_served(
    repo: Path, standin: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 1)
    wait_for(lambda: standin.served("resnet") == 1, 2, "version 1")
    standin.load_delay = 0.2
    publish(repo, "resnet", 2)
    started = time.monotonic()

    got = client(standin, poll=0.05).wait_until_served("resnet", 2, [1, 2], 5, StopToken())

    assert got == 2
    assert 0.15 <= time.monotonic() - started < 2


@pytest.mark.parametrize("standin", [Kind.KSERVE], indirect=True)
def test_wait_until_served_asks_for_the_awaited_version_even_when_not_a_candidate(
    repo: Path, standin: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 2)
    wait_for(lambda: standin.served("resnet") == 2, 2, "version 2")

    got = client(standin, poll=0.05).wait_until_served("resnet", 2, [1], 1, StopToken())

    assert got == 2


@pytest.mark.parametrize("standin", [Kind.TFSERVING], indirect=True)
def test_wait_until_served_ends_early_when_stopped(repo: Path, standin: ModelServerStandIn) -> None:
    publish(repo, "resnet", 1)
    wait_for(lambda: standin.served("resnet") == 1, 2, "version 1")
    standin.load_delay = 30
    publish(repo, "resnet", 2)
    stop = StopToken()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()

    got = client(standin, poll=0.05).wait_until_served("resnet", 2, [1, 2], 10, stop)

    assert got == 1
    assert time.monotonic() - started < 1


@POLL_KINDS
def test_wait_until_served_gives_up_after_within_with_what_it_saw(
    repo: Path, standin: ModelServerStandIn
) -> None:
    publish(repo, "resnet", 1)
    wait_for(lambda: standin.served("resnet") == 1, 2, "version 1")
    standin.broken.add(("resnet", 2))
    publish(repo, "resnet", 2)
    started = time.monotonic()

    got = client(standin, poll=0.05).wait_until_served("resnet", 2, [1, 2], 0.25, StopToken())

    assert got == 1
    assert 0.25 <= time.monotonic() - started < 1.5


@pytest.mark.parametrize("standin", [Kind.KSERVE], indirect=True)
def test_wait_until_served_rides_out_an_outage(repo: Path, standin: ModelServerStandIn) -> None:
    publish(repo, "resnet", 1)
    wait_for(lambda: standin.served("resnet") == 1, 2, "version 1")
    standin.down = True
    threading.Timer(0.2, setattr, (standin, "down", False)).start()

    got = client(standin, poll=0.05).wait_until_served("resnet", 1, [1], 5, StopToken())

    assert got == 1
    assert ("GET", "/v2/models/resnet/versions/1/ready") in standin.requests


@pytest.mark.parametrize("standin", [Kind.TFSERVING], indirect=True)
def test_wait_until_served_raises_the_last_error_when_the_server_stays_down(
    standin: ModelServerStandIn,
) -> None:
    standin.down = True
    with pytest.raises(ServerError, match=r"model resnet: HTTP 503"):
        client(standin, poll=0.05).wait_until_served("resnet", 1, [1], 0.2, StopToken())
    assert len(standin.requests) >= 3


# names


@pytest.mark.parametrize(
    ("model", "dest", "name"),
    [
        ("resnet", Path("/srv/models"), "resnet"),
        ("team/resnet", Path("/srv/models"), "team_resnet"),
        ("a/b/c", Path("/srv/models"), "a_b_c"),
        ("", Path("/srv/models"), "models"),
        ("", Path("/srv/models/"), "models"),
    ],
)
def test_server_name_follows_the_tf_serving_config_names(model: str, dest: Path, name: str) -> None:
    assert server_name(model, dest) == name


def test_server_name_of_the_empty_path_is_the_basename_of_a_relative_dest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "serving").mkdir()
    monkeypatch.chdir(tmp_path / "serving")
    assert server_name("", Path(".")) == "serving"


def test_a_user_and_password_in_the_url_are_sent_as_basic_auth_and_never_shown() -> None:
    """A server behind an authenticating proxy: http://user:password@host."""
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        port = httpd.server_address[1]
        server = ModelServer(f"http://ops:p%40ss@127.0.0.1:{port}", Kind.TFSERVING)
        with pytest.raises(ServerError) as failed:
            server.served("resnet", [1])
        httpd.shutdown()
    assert seen == ["Basic " + base64.b64encode(b"ops:p@ss").decode()]
    assert str(failed.value) == f"--server http://127.0.0.1:{port}: model resnet: HTTP 500"
