"""The two log formats: fields travel with the line, and every string is redacted."""

from __future__ import annotations

import json
import logging

import pytest

from gcs_model_sync import logs


def record(message: str, **fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("gcs_model_sync", logging.WARNING, __file__, 1, message, (), None)
    rec.event = "version_waiting"
    rec.fields = fields
    return rec


def test_json_is_one_object_with_the_fields_redacted() -> None:
    line = logs.JsonFormatter().format(
        record("fetching http://user:hunter2@proxy:3128/x", url="http://u:s3cret@h/", n=[1, "a"])
    )
    assert "\n" not in line
    doc = json.loads(line)
    assert (doc["level"], doc["event"], doc["n"]) == ("warning", "version_waiting", [1, "a"])
    assert doc["ts"].endswith("Z")
    assert "hunter2" not in line
    assert "s3cret" not in line


def test_text_is_time_level_message_and_clears_a_progress_line_on_a_terminal() -> None:
    plain = logs.TextFormatter().format(record("hello"))
    assert plain.endswith(" WARNING hello")
    assert plain[:4].isdigit()
    assert logs.TextFormatter(terminal=True).format(record("hello")).startswith("\r\x1b[K")


@pytest.mark.parametrize(
    ("verbosity", "level"), [(-1, logging.WARNING), (0, logging.INFO), (2, logging.DEBUG)]
)
def test_setup_sets_the_level_and_replaces_the_handlers(verbosity: int, level: int) -> None:
    logger = logging.getLogger("gcs_model_sync")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        logs.setup("json", verbosity)
        logs.setup("json", verbosity)
        assert logger.level == level
        assert len(logger.handlers) == 1
        assert isinstance(logger.handlers[0].formatter, logs.JsonFormatter)
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def test_a_line_about_a_source_names_it_in_both_formats(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gcs_model_sync"):
        with logs.about("vision"):
            logs.event(logging.INFO, "published", "published m/1", model="m")
        logs.event(logging.INFO, "published", "published m/2")
    tagged, plain = caplog.records
    assert tagged.getMessage() == "[vision] published m/1"
    assert json.loads(logs.JsonFormatter().format(tagged))["source_name"] == "vision"
    assert json.loads(logs.JsonFormatter().format(tagged))["model"] == "m"
    assert plain.getMessage() == "published m/2"
    assert "source_name" not in json.loads(logs.JsonFormatter().format(plain))
