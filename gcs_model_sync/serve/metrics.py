"""Prometheus metrics (prometheus-client), all prefixed gcs_model_sync_, on a private registry;
several sources' on one registry, each series labelled with its `source`."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.metrics_core import Metric

from gcs_model_sync.layout import VERSION_RE, servable
from gcs_model_sync.report import FailureKind, Report

PREFIX = "gcs_model_sync"


class Metrics:
    def __init__(self) -> None:
        # No `*_created` series beside every counter and histogram: they double what is
        # scraped and say only when the process started (process-wide switch; set before
        # the metrics are made).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = r = CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=r)

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"{PREFIX}_{name}", doc, labels, registry=r)

        self.passes = counter("passes", "Passes by outcome.", "outcome")
        self.duration = Histogram(
            f"{PREFIX}_pass_duration_seconds",
            "Wall time of a pass.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.bytes = counter("downloaded_bytes", "Object bytes read.")
        self.published = counter("versions_published", "Versions published.")
        self.pruned = counter("versions_pruned", "Versions pruned.")
        self.rejected = counter("objects_rejected", "Versions whose bucket content was refused.")
        self.failed = counter("version_failures", "Versions that failed to install.")
        self.last_success = gauge(
            "last_success_timestamp_seconds", "Unix time of the last pass that succeeded."
        )
        self.consecutive_failures = gauge("consecutive_failures", "Failed passes in a row.")
        self.last_listing = gauge(
            "last_listing_timestamp_seconds",
            "Unix time of the last pass whose listing of the bucket completed.",
        )
        self.versions_on_disk = gauge(
            "versions_on_disk",
            "Model version folders on disk after the last pass (/readyz needs one).",
        )
        self.newest = gauge(
            "model_newest_version", "Newest version number published locally, per model.", "model"
        )
        self.waiting = gauge(
            "versions_waiting",
            "Folder-form versions in the bucket whose upload is not complete yet.",
        )
        self.hooks = counter("hook_runs", "--on-change runs by outcome.", "outcome")
        self.verify = counter(
            "verify_runs",
            "--verify runs by outcome (failure and timeout: the version was refused).",
            "outcome",
        )
        self.served = gauge(
            "model_served_version",
            "Newest version the model server (--server) serves, per model.",
            "model",
        )
        self.files = counter(
            "model_files_changed", "Model files (--model-files) written or removed."
        )
        for outcome in ("success", "error", "noop"):
            self.passes.labels(outcome)
        for outcome in ("success", "failure", "timeout"):
            self.hooks.labels(outcome)
            self.verify.labels(outcome)

    def observe(self, report: Report, dest: Path, models: set[str]) -> None:
        self.passes.labels(report.outcome).inc()
        self.duration.observe(report.seconds)
        self.bytes.inc(report.bytes_downloaded)
        self.published.inc(len(report.published))
        self.pruned.inc(len(report.pruned))
        content = sum(1 for f in report.failures if f.kind is FailureKind.CONTENT)
        per_version = sum(1 for f in report.failures if f.version)
        self.rejected.inc(content)
        self.failed.inc(per_version - content)
        self.files.inc(len(report.files_written) + len(report.files_removed))
        for outcome in report.verify_runs:
            self.verify.labels(outcome).inc()
        for model, version in report.served.items():
            label = model or "."
            if version is not None:
                self.served.labels(label).set(version)
            else:
                with contextlib.suppress(KeyError):
                    self.served.remove(label)
        if report.outcome != "error":
            self.last_success.set(time.time())
        if report.plan is not None:  # the listing completed, whatever happened next
            self.last_listing.set(time.time())
            self.waiting.set(len(report.plan.waiting))
        self._newest(dest, models)

    def _newest(self, dest: Path, models: set[str]) -> None:
        """One scandir per model: cheap, and never walks inside a version."""
        for model in models:
            try:
                names = [
                    e.name
                    for e in os.scandir(dest / model)
                    if VERSION_RE.fullmatch(e.name) and servable(e.name)
                ]
            except OSError:
                names = []
            label = model or "."
            if names:
                self.newest.labels(label).set(max(int(n) for n in names))
            else:
                with contextlib.suppress(KeyError):
                    self.newest.remove(label)


class Labelled:
    """Several sources' Metrics served as one: every series gains `source="<name>"`, and a
    family holds every source's series (one HELP and TYPE line each, as Prometheus wants)."""

    def __init__(self, named: Mapping[str, Metrics]) -> None:
        self.named = dict(named)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for source, metrics in self.named.items():
            for family in metrics.registry.collect():
                into = families.setdefault(
                    family.name,
                    Metric(family.name, family.documentation, family.type, family.unit),
                )
                into.samples += [
                    s._replace(labels={**s.labels, "source": source}) for s in family.samples
                ]
        yield from families.values()
