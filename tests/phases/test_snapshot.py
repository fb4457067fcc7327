"""What a pass starts from: here, the clock --settle is judged on."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.logs import log
from gcs_model_sync.phases import snapshot
from gcs_model_sync.source.listing import Listing


def test_settling_falls_back_to_the_node_clock_only_without_a_date_header(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every GCS response carries `Date`; should a proxy strip it, --settle is judged on this
    node's clock rather than never, and the log says so."""
    log.addHandler(caplog.handler)  # logs.setup() may have stopped propagation in this process
    caplog.set_level(logging.INFO, logger=log.name)
    try:
        _check_bucket_now(tmp_path, caplog)
    finally:
        log.removeHandler(caplog.handler)


def _check_bucket_now(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = Config(source=Source.parse("gs://bkt/models"), dest=tmp_path, settle=60)
    assert snapshot.bucket_now(Listing([], 1_800_000_000.0), config) == 1_800_000_000.0
    assert not [r for r in caplog.records if getattr(r, "event", "") == "no_server_time"]

    before = time.time()
    assert before <= (snapshot.bucket_now(Listing([], None), config) or 0) <= time.time()
    assert [r for r in caplog.records if getattr(r, "event", "") == "no_server_time"]
    off = Config(source=Source.parse("gs://bkt/models"), dest=tmp_path, settle=0)
    assert snapshot.bucket_now(Listing([], None), off) is None  # nothing to judge
