from __future__ import annotations

import time
from pathlib import Path

import pytest

from gcs_model_sync.errors import ConfigError
from gcs_model_sync.report import Failure, Report
from gcs_model_sync.serve.health import Each, Health, Server
from gcs_model_sync.serve.metrics import Metrics
from tests.support.probes import get, needs_ipv6


def test_endpoints_follow_the_loop_state(tmp_path: object) -> None:
    health, metrics = Health(stuck_after=60), Metrics()
    server = Server("127.0.0.1", 0, health, metrics).start()
    try:
        assert get(server.port, "/healthz")[0] == 200
        assert get(server.port, "/readyz") == (503, "no pass has listed the bucket yet\n")
        health.pass_begins()
        health.pass_ends(ok=True, listed=True, versions=1)
        assert get(server.port, "/readyz") == (200, "ok: 1 version(s) on disk\n")
        health.pass_ends(ok=False, listed=True, versions=0)
        assert get(server.port, "/readyz") == (503, "no model version on disk\n")
        status, text = get(server.port, "/metrics")
        assert status == 200
        assert 'gcs_model_sync_passes_total{outcome="noop"} 0.0' in text
        assert get(server.port, "/nope")[0] == 404
        health.alive = False
        assert get(server.port, "/healthz")[0] == 503
    finally:
        server.stop()


def test_ready_needs_a_listing_and_a_version_then_failures_never_flip_it() -> None:
    health = Health(stuck_after=60)
    assert health.ready() == (False, "no pass has listed the bucket yet")
    # versions already on disk (an init container, a restart) but no listing yet
    health.pass_ends(ok=False, listed=False, versions=3)
    assert health.ready() == (False, "no pass has listed the bucket yet")
    # a listing, but nothing on disk (a typo'd prefix, only versions still uploading)
    health.pass_ends(ok=False, listed=True, versions=0)
    assert health.ready() == (False, "no model version on disk")
    health.pass_ends(ok=True, listed=True, versions=0)
    assert health.ready() == (False, "no model version on disk")
    health.pass_ends(ok=True, listed=True, versions=2)
    assert health.ready() == (True, "ok: 2 version(s) on disk")
    # then: a bad object (listed, failed), an outage (not listed), a full disk, a bug
    for listed in (True, False, True, False):
        health.pass_ends(ok=False, listed=listed, versions=2)
        ok, why = health.ready()
        assert ok, why
        assert why == "ok: 2 version(s) on disk; the last pass failed"
    health.pass_ends(ok=True, listed=True, versions=2)
    assert health.ready() == (True, "ok: 2 version(s) on disk")
    # every version gone from disk (an emptied bucket with --allow-empty-source)
    health.pass_ends(ok=True, listed=True, versions=0)
    assert health.ready() == (False, "no model version on disk")


def test_the_last_good_listing_is_a_timestamp() -> None:
    from gcs_model_sync.plan.plan import Plan

    metrics = Metrics()
    dest = Path("/nonexistent")
    metrics.observe(Report(failures=[Failure(None, None, "listing failed")]), dest, set())
    assert metrics.last_listing._value.get() == 0
    before = time.time()
    metrics.observe(Report(plan=Plan(), failures=[Failure("m", "m/2", "bad", True)]), dest, set())
    listed = metrics.last_listing._value.get()
    assert listed >= before
    assert metrics.last_success._value.get() == 0  # listed, but the pass failed
    metrics.observe(Report(failures=[Failure(None, None, "listing failed")]), dest, set())
    assert metrics.last_listing._value.get() == listed


def test_the_newest_version_metric_skips_a_folder_numbered_beyond_int64(tmp_path: Path) -> None:
    """Model servers skip such a folder, so it is no version: never shown as the newest."""
    (tmp_path / "m" / "5").mkdir(parents=True)
    (tmp_path / "m" / "99999999999999999999").mkdir()
    metrics = Metrics()
    metrics.observe(Report(), tmp_path, {"m"})
    assert metrics.newest.labels("m")._value.get() == 5


def test_metrics_count_a_report(tmp_path: object) -> None:
    from pathlib import Path

    dest = Path(str(tmp_path))
    (dest / "m" / "0003").mkdir(parents=True)
    (dest / "m" / "12").mkdir()
    (dest / "m" / "notes").mkdir()
    metrics = Metrics()
    metrics.observe(Report(published=["m/12"], bytes_downloaded=100, seconds=0.5), dest, {"m"})
    assert metrics.published._value.get() == 1
    assert metrics.bytes._value.get() == 100
    assert metrics.newest.labels("m")._value.get() == 12
    assert metrics.last_success._value.get() > 0
    for child in (dest / "m").iterdir():
        child.rmdir()
    metrics.observe(Report(pruned=["m/12", "m/0003"]), dest, {"m"})
    assert "gcs_model_sync_model_newest_version{" not in _text(metrics)


def _text(metrics: Metrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


def test_metrics_have_no_created_series() -> None:
    metrics = Metrics()
    metrics.observe(Report(published=["m/1"], bytes_downloaded=10, seconds=0.1), Path("/x"), set())
    metrics.hooks.labels("success").inc()
    text = _text(metrics)
    assert "gcs_model_sync_passes_total" in text
    assert "_created" not in text


@needs_ipv6
@pytest.mark.parametrize(
    ("host", "reached", "not_reached"),
    [
        ("::", ["127.0.0.1", "[::1]"], []),  # dual stack: IPv4 probes reach it too
        ("::1", ["[::1]"], ["127.0.0.1"]),
        ("[::1]", ["[::1]"], ["127.0.0.1"]),
        ("127.0.0.1", ["127.0.0.1"], ["[::1]"]),
    ],
)
def test_probes_are_served_on_ipv6_and_dual_stack(
    host: str, reached: list[str], not_reached: list[str]
) -> None:
    server = Server(host, 0, Health(stuck_after=60), Metrics()).start()
    try:
        for where in reached:
            assert get(server.port, "/healthz", host=where) == (200, "ok\n"), where
        for where in not_reached:
            assert get(server.port, "/healthz", host=where)[0] == 0, where
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["not a host!", "[::1", "::1]", "300.1.1.1", ""])
def test_an_http_host_that_is_no_address_is_a_usage_error_naming_it(host: str) -> None:
    with pytest.raises(ConfigError, match=r"^--http-host "):
        Server(host, 0, Health(stuck_after=60), Metrics())


def test_several_sources_are_ready_when_each_is_and_the_reason_names_the_source() -> None:
    vision, nlp = Health(stuck_after=60), Health(stuck_after=60)
    each = Each({"vision": vision, "nlp": nlp})
    vision.pass_ends(ok=True, listed=True, versions=2)
    assert each.ready() == (False, "nlp: no pass has listed the bucket yet")
    nlp.pass_ends(ok=True, listed=True, versions=1)
    assert each.ready() == (True, "vision: ok: 2 version(s) on disk; nlp: ok: 1 version(s) on disk")
    nlp.pass_ends(ok=False, listed=False, versions=1)  # an outage of one source: still ready
    assert each.ready()[0] is True
    assert each.ready()[1].endswith("nlp: ok: 1 version(s) on disk; the last pass failed")
    assert each.healthy() == (True, "ok")
    nlp.alive = False
    assert each.healthy() == (False, "nlp: loop stopped")
