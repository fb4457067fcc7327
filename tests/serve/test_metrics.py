"""What one pass's report adds to the metrics: counts by kind, and gauges that follow disk."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.report import Failure, FailureKind, Report
from gcs_model_sync.serve.metrics import Labelled, Metrics


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(f"gcs_model_sync_{name}", labels or None)


def test_a_rejected_version_is_not_counted_as_a_failed_install(tmp_path: Path) -> None:
    m = Metrics()
    report = Report(
        plan=Plan(),
        failures=[
            Failure("m", "m/3", "not a zip", FailureKind.CONTENT),
            Failure("m", "m/4", "denied", FailureKind.REMOTE),
            Failure(None, None, "listing failed", FailureKind.LISTING),  # not a version
        ],
    )
    m.observe(report, tmp_path, set())
    assert value(m, "objects_rejected_total") == 1
    assert value(m, "version_failures_total") == 1
    assert value(m, "passes_total", outcome="error") == 1
    assert value(m, "last_success_timestamp_seconds") == 0


def test_newest_and_served_follow_what_is_there(tmp_path: Path) -> None:
    m = Metrics()
    for v in ("1", "7", "12", "tmp"):
        (tmp_path / "m" / v).mkdir(parents=True)
    m.observe(Report(plan=Plan(), served={"m": 7}), tmp_path, {"m"})
    assert value(m, "model_newest_version", model="m") == 12
    assert value(m, "model_served_version", model="m") == 7
    assert value(m, "passes_total", outcome="noop") == 1

    for v in ("1", "7", "12"):
        (tmp_path / "m" / v).rmdir()
    m.observe(Report(plan=Plan(), served={"m": None}), tmp_path, {"m"})
    assert value(m, "model_newest_version", model="m") is None  # the series is gone
    assert value(m, "model_served_version", model="m") is None


def test_a_pass_without_a_listing_leaves_the_listing_time(tmp_path: Path) -> None:
    m = Metrics()
    m.observe(Report(plan=None, failures=[Failure(None, None, "down")]), tmp_path, set())
    assert value(m, "last_listing_timestamp_seconds") == 0
    m.observe(Report(plan=Plan(), published=["m/1"]), tmp_path, set())
    assert (value(m, "last_listing_timestamp_seconds") or 0) > 0
    assert value(m, "versions_published_total") == 1


def test_several_sources_are_one_registry_with_a_source_label(tmp_path: Path) -> None:
    a, b = Metrics(), Metrics()
    (tmp_path / "m" / "3").mkdir(parents=True)
    a.observe(Report(plan=Plan(), published=["m/3"]), tmp_path, {"m"})
    b.observe(Report(plan=Plan(), failures=[Failure("t", "t/1", "bad", FailureKind.CONTENT)]),
              tmp_path / "none", {"t"})  # fmt: skip
    both = Labelled({"vision": a, "nlp": b})
    get = both.registry.get_sample_value
    assert get("gcs_model_sync_versions_published_total", {"source": "vision"}) == 1
    assert get("gcs_model_sync_versions_published_total", {"source": "nlp"}) == 0
    assert get("gcs_model_sync_objects_rejected_total", {"source": "nlp"}) == 1
    assert get("gcs_model_sync_model_newest_version", {"model": "m", "source": "vision"}) == 3
    assert get("gcs_model_sync_passes_total", {"outcome": "error", "source": "nlp"}) == 1
    text = generate_latest(both.registry).decode()
    # one HELP and one TYPE line a family, whichever sources have series in it
    assert text.count("# TYPE gcs_model_sync_versions_published_total counter") == 1
    assert text.count("# HELP gcs_model_sync_passes_total ") == 1
    assert 'gcs_model_sync_passes_total{outcome="noop",source="vision"} 0.0' in text
    assert "_created" not in text
