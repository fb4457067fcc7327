"""One redaction for every URL and command line shown: logs, errors, the start line."""

from __future__ import annotations

import json
import logging

import pytest

from gcs_model_sync.errors import ConfigError
from gcs_model_sync.logs import JsonFormatter, TextFormatter
from gcs_model_sync.redaction import redact, scrub, secrets_in, shown_url
from gcs_model_sync.servers.server import Kind, ModelServer


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:pw@127.0.0.1:9/x", "http://<redacted>@127.0.0.1:9/x"),
        ("https://TOKEN@github.com/o/r", "https://<redacted>@github.com/o/r"),
        ("cannot reach http://u:p@h:1: refused", "cannot reach http://<redacted>@h:1: refused"),
        ("curl -u admin:pw http://h", "curl -u <redacted> http://h"),
        ("curl -uadmin:pw http://h", "curl -u<redacted> http://h"),
        ("curl --user admin:pw http://h", "curl --user <redacted> http://h"),
        ("curl --user=admin:pw http://h", "curl --user=<redacted> http://h"),
        ("curl --proxy-user a:b -x p h", "curl --proxy-user <redacted> -x p h"),
        ("wget --password hunter2 h", "wget --password <redacted> h"),
        ("wget --http-password=hunter2 h", "wget --http-password=<redacted> h"),
        ("notify --api-token abc -v", "notify --api-token <redacted> -v"),
        ("curl -H 'Authorization: Bearer s3cr3t' h",
         "curl -H 'Authorization: Bearer <redacted>' h"),
        ('curl -H "authorization: Basic YWI6Y2Q=" h',
         'curl -H "authorization: Basic <redacted>" h'),
        ("curl -H 'Authorization: s3cr3t' h", "curl -H 'Authorization: <redacted>' h"),
        ("curl -H 'X-Api-Key: k3y' h", "curl -H 'X-Api-Key: <redacted>' h"),
        ("curl 'https://h/x?token=abc&b=1'", "curl 'https://h/x?token=<redacted>&b=1'"),
        ("h/x?access_token=abc&X-Goog-Signature=f00",
         "h/x?access_token=<redacted>&X-Goog-Signature=<redacted>"),
        ("sh -c 'PASSWORD=x notify'", "sh -c 'PASSWORD=<redacted> notify'"),
        ("send Bearer abc.def.ghi", "send Bearer <redacted>"),
    ],
)  # fmt: skip
def test_credentials_in_urls_and_command_lines_are_redacted(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "curl -X POST http://tfs:8501/v1/models/m:reload",
        "gs://bucket/models/m/1.zip: could not get an access token: Bad Request",
        "sends them as basic auth; a key: value pair; --keep 2 --hook-timeout 5",
        "pass --endpoint-credentials if it should get them",
        "sudo -u www-data reload",  # a user name alone is no secret
        "reading gs://b/models/date=2024-01-01/1.zip from byte 0",
        "git@github.com:o/r.git and mail me@example.com",
        "GOOGLE_APPLICATION_CREDENTIALS=/secrets/sa.json cannot be used: File was not found",
    ],
)
def test_text_without_credentials_is_left_as_it_is(text: str) -> None:
    assert redact(text) == text


def test_none_stays_none() -> None:
    assert redact(None) is None


def test_the_values_hidden_are_scrubbed_wherever_they_show_again() -> None:
    command = "sh -c 'curl -fsS -u admin:hunter22 http://h/ || echo failed for hunter22' x"
    hidden = secrets_in(command)
    assert "admin:hunter22" in hidden
    assert "hunter22" in hidden
    output = "curl: (7) failed\nfailed for hunter22 (admin:hunter22)"
    assert "hunter22" not in scrub(output, hidden)
    assert scrub("nothing here", hidden) == "nothing here"


def _record(message: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("gcs_model_sync", logging.ERROR, __file__, 1, message, (), None)
    record.event = "listing_failed"
    record.fields = fields
    return record


def test_every_log_line_is_redacted_text_and_json() -> None:
    record = _record(
        "listing gs://b: cannot reach http://u:pw9@127.0.0.1:1",
        config={"endpoint": "http://u:pw9@127.0.0.1:1", "keep": 2},
        error=["token=pw9"],
    )
    text = TextFormatter().format(record)
    assert "pw9" not in text
    assert "http://<redacted>@127.0.0.1:1" in text
    doc = json.loads(JsonFormatter().format(record))
    assert "pw9" not in json.dumps(doc)
    assert doc["config"] == {"endpoint": "http://<redacted>@127.0.0.1:1", "keep": 2}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://ops:p%40ss@127.0.0.1:8501/", "http://127.0.0.1:8501/"),
        ("http://127.0.0.1:8501", "http://127.0.0.1:8501"),
        ("ops:hunter22@tfs:8501", "<redacted>@tfs:8501"),  # no scheme: not a URL, still hidden
        ("http://ops:hunter22@tfs:port", "http://tfs:port"),
    ],
)
def test_a_url_is_shown_without_its_user_and_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_a_server_url_that_is_none_never_shows_its_password() -> None:
    with pytest.raises(ConfigError) as refused:
        ModelServer("ops:hunter22@tfs:8501", Kind.TFSERVING)
    assert "hunter22" not in str(refused.value)
    assert str(refused.value).startswith("--server <redacted>@tfs:8501: not an http(s)://")
