from __future__ import annotations

from gcs_model_sync.engine import Report
from gcs_model_sync.health import Health, Server
from gcs_model_sync.metrics import Metrics
from tests.support.probes import get


def test_endpoints_follow_the_loop_state(tmp_path: object) -> None:
    health, metrics = Health(stuck_after=60), Metrics()
    server = Server("127.0.0.1", 0, health, metrics).start()
    try:
        assert get(server.port, "/healthz")[0] == 200
        assert get(server.port, "/readyz") == (503, "no pass has finished yet\n")
        health.pass_begins()
        health.pass_ends(ok=True)
        assert get(server.port, "/readyz")[0] == 200
        health.pass_ends(ok=False)
        assert get(server.port, "/readyz") == (503, "last pass failed\n")
        status, text = get(server.port, "/metrics")
        assert status == 200
        assert 'gcs_model_sync_passes_total{outcome="noop"} 0.0' in text
        assert get(server.port, "/nope")[0] == 404
        health.alive = False
        assert get(server.port, "/healthz")[0] == 503
    finally:
        server.stop()


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
