"""Several sources in one process, from `--config FILE`: each into its own sub-folder of
--dest, one lock, one loop, one set of probes and metrics labelled per source."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PREFIX, Sync, sidecar
from tests.support.cli import popen_cli, run_cli
from tests.support.gcs import Bucket
from tests.support.models import sample_files
from tests.support.probes import get, metric, wait_for


class Many:
    """Two buckets, one --dest, and a config file naming both as sources."""

    def __init__(self, sync: Sync, gcs: Any, tmp_path: Path) -> None:
        self.sync = sync
        self.vision = sync.bucket
        self.nlp = Bucket(gcs, f"{sync.bucket.name}-nlp")
        self.dest = sync.dest
        self.file = tmp_path / "sources.yaml"

    def url(self, bucket: Bucket | str) -> str:
        name = bucket if isinstance(bucket, str) else bucket.name
        return f"gs://{name}/{PREFIX}"

    def write(self, text: str, name: str = "sources.yaml") -> Path:
        self.file = self.file.with_name(name)
        self.file.write_text(text)
        return self.file

    def two(self, vision: str = "", nlp: str = "", top: str = "") -> Path:
        """A YAML file with the two sources; extra lines per source and at the top."""
        return self.write(
            f"{top}sources:\n"
            f"  - source: {self.url(self.vision)}\n    dest: vision\n{vision}"
            f"  - source: {self.url(self.nlp)}\n    dest: nlp\n{nlp}"
        )

    def run(
        self, command: str, *extra: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = [command, "--config", str(self.file), "--dest", str(self.dest), *extra]
        return run_cli(args, self.sync.endpoint, env=env)

    def versions(self, sub: str, model: str) -> list[str]:
        base = self.dest / sub / model
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def sidecar(self, *extra: str) -> AbstractContextManager[tuple[subprocess.Popen[str], int]]:
        args = ["run", "--config", str(self.file), "--dest", str(self.dest)]
        return sidecar(lambda probes: popen_cli([*args, *probes, *extra], self.sync.endpoint))


@pytest.fixture
def many(sync: Sync, gcs: Any, tmp_path: Path) -> Many:
    return Many(sync, gcs, tmp_path)


def test_two_sources_from_a_config_file_install_into_their_own_subfolders(many: Many) -> None:
    for n in ("1", "2"):
        many.vision.put_zip(f"{PREFIX}/resnet/{n}.zip", sample_files(f"r{n}"))
    many.nlp.put_zip(f"{PREFIX}/bert/7.zip", sample_files("b7"))
    many.two(vision="    keep: 1\n")

    result = many.run("once")

    assert result.returncode == 0, result.stderr
    assert many.versions("vision", "resnet") == ["2"]  # its own --keep
    assert many.versions("nlp", "bert") == ["7"]
    assert not (many.dest / "resnet").exists()
    assert "[vision]" in result.stderr
    assert "[nlp]" in result.stderr


def test_a_failing_source_does_not_hold_the_other_sources_install(many: Many) -> None:
    many.vision.put_zip(f"{PREFIX}/resnet/1.zip", sample_files("r1"))
    many.vision.put(f"{PREFIX}/resnet/2.zip", b"PK\x03\x04 this is not really a zip")
    many.nlp.put_zip(f"{PREFIX}/bert/7.zip", sample_files("b7"))
    many.write(
        f"sources:\n"
        f"  - source: gs://no-such-bucket-for-sources/{PREFIX}\n    dest: gone\n"
        f"  - source: {many.url(many.vision)}\n    dest: vision\n"
        f"  - source: {many.url(many.nlp)}\n    dest: nlp\n"
    )

    result = many.run("once", "--retry-attempts", "1")

    assert result.returncode == 1, result.stderr
    assert many.versions("vision", "resnet") == ["1"]  # the bad archive is its failure only
    assert many.versions("nlp", "bert") == ["7"]
    assert "no-such-bucket-for-sources" in result.stderr


def test_a_flag_wins_over_the_config_file_and_the_file_over_the_default(many: Many) -> None:
    for n in ("1", "2", "3", "4"):
        many.vision.put_zip(f"{PREFIX}/m/{n}.zip", sample_files(n))
    many.write(f'source = "{many.url(many.vision)}"\nkeep = 2\n', name="sync.toml")

    def fetched(*extra: str, env: Mapping[str, str] | None = None) -> list[str]:
        result = many.run("plan", "--output", "json", *extra, env=env)
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)["actions"]
        return [r["version"] for r in rows if r["action"] == "fetch"]

    assert fetched() == ["m/3", "m/4"]  # the file over the default (0: all)
    assert fetched("--keep", "1") == ["m/4"]  # the flag over the file
    assert fetched(env={"GCS_MODEL_SYNC_KEEP": "3"}) == ["m/2", "m/3", "m/4"]  # env over file
    assert fetched("--keep", "0") == ["m/1", "m/2", "m/3", "m/4"]  # a flag equal to the default


def test_a_per_source_option_applies_to_that_source_only(many: Many) -> None:
    for n in ("1", "2", "3"):
        many.vision.put_zip(f"{PREFIX}/m/{n}.zip", sample_files(n))
        many.nlp.put_zip(f"{PREFIX}/m/{n}.zip", sample_files(n))
    many.two(vision="    keep: 1\n", top="keep: 2\n")

    assert many.run("once").returncode == 0
    assert many.versions("vision", "m") == ["3"]  # its own
    assert many.versions("nlp", "m") == ["2", "3"]  # the file's top level


def test_plan_and_status_show_each_source_under_its_name(many: Many) -> None:
    many.vision.put_zip(f"{PREFIX}/resnet/1.zip", sample_files("r1"))
    many.nlp.put_zip(f"{PREFIX}/bert/7.zip", sample_files("b7"))
    many.two()

    text = many.run("plan")
    assert text.returncode == 0, text.stderr
    assert f"== vision: {many.url(many.vision)}/ -> {many.dest / 'vision'}" in text.stdout
    assert f"== nlp: {many.url(many.nlp)}/ -> {many.dest / 'nlp'}" in text.stdout
    assert text.stdout.index("resnet/1") < text.stdout.index("== nlp") < text.stdout.index("bert/7")

    doc = json.loads(many.run("plan", "--output", "json").stdout)
    assert [s["name"] for s in doc["sources"]] == ["vision", "nlp"]
    assert [r["version"] for r in doc["sources"][1]["actions"]] == ["bert/7"]

    status = json.loads(many.run("status", "--output", "json").stdout)
    assert [(s["name"], [m["model"] for m in s["models"]]) for s in status["sources"]] == [
        ("vision", ["resnet"]),
        ("nlp", ["bert"]),
    ]
    assert "== nlp" in many.run("status").stdout


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("kepe: 1\n", "unknown key 'kepe'"),
        ("sources:\n  - source: gs://b-one/p\n    dest: a\n    interval: 5\n",
         "'interval' is process-wide"),
        ("sources:\n  - source: gs://b-one/p\n    dest: ../out\n", "inside --dest"),
        ("sources:\n  - source: gs://b-one/p\n    dest: a\n  - source: gs://b-two/p\n"
         "    dest: a/b\n", "nested"),
        ("keep: lots\n", "keep"),
        ("sources:\n  - source: gs://b-one/p\n    dest: a\n    keep: -1\n", "--keep must be"),
    ],
)  # fmt: skip
def test_a_bad_config_file_is_one_line_naming_the_file_and_exit_2(
    many: Many, text: str, said: str
) -> None:
    path = many.write(text)
    result = many.run("once")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(path) in lines[0]
    assert said in lines[0]
    assert not many.dest.exists()


def test_without_config_source_is_still_required(sync: Sync) -> None:
    result = run_cli(["once", "--dest", str(sync.dest)], sync.endpoint)
    assert result.returncode == 2
    assert "--source" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_one_lock_on_dest_keeps_a_second_process_out(many: Many) -> None:
    many.vision.put_zip(f"{PREFIX}/resnet/1.zip", sample_files("r1"))
    many.two()
    lock = many.dest / ".gcs-model-sync" / "lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = many.run("once", "--lock-timeout", "0.5")
    finally:
        os.close(fd)
    assert result.returncode == 1
    assert "another gcs-model-sync is writing to this destination" in result.stderr
    assert many.versions("vision", "resnet") == []


def test_run_serves_metrics_labelled_per_source(many: Many) -> None:
    many.vision.put_zip(f"{PREFIX}/resnet/1.zip", sample_files("r1"))
    many.nlp.put_zip(f"{PREFIX}/bert/7.zip", sample_files("b7"))
    many.two()
    with many.sidecar() as (proc, port):
        wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready")
        many.nlp.put_zip(f"{PREFIX}/bert/8.zip", sample_files("b8"))
        wait_for(lambda: many.versions("nlp", "bert") == ["7", "8"], what="nlp/bert/8")
        published = 'gcs_model_sync_versions_published_total{source="%s"}'
        wait_for(lambda: metric(port, published % "nlp") == 2, what="nlp's count")
        assert metric(port, published % "vision") == 1
        newest = 'gcs_model_sync_model_newest_version{model="bert",source="nlp"}'
        assert metric(port, newest) == 8
        assert metric(port, 'gcs_model_sync_consecutive_failures{source="vision"}') == 0
        assert get(port, "/healthz")[0] == 200
        assert proc.poll() is None
    assert proc.stderr is not None
    log = proc.stderr.read()
    for name in ("vision", "nlp"):  # each source's start line and its config
        assert f"[{name}] gcs-model-sync " in log
        assert f" run {many.url(getattr(many, name))}/ -> {many.dest / name}" in log


def test_readyz_waits_for_every_source_and_one_failing_never_stops_the_others(
    many: Many, gcs: Any
) -> None:
    many.vision.put_zip(f"{PREFIX}/resnet/1.zip", sample_files("r1"))
    late = f"{many.vision.name}-late"
    many.write(
        f"sources:\n"
        f"  - source: {many.url(many.vision)}\n    dest: vision\n"
        f"  - source: {many.url(late)}\n    dest: late\n"
    )
    with many.sidecar("--retry-attempts", "1") as (proc, port):
        failures = 'gcs_model_sync_consecutive_failures{source="late"}'
        wait_for(lambda: metric(port, failures) >= 3, what="late's failed passes")
        assert many.versions("vision", "resnet") == ["1"]
        assert metric(port, 'gcs_model_sync_consecutive_failures{source="vision"}') == 0
        assert get(port, "/readyz") == (503, "late: no pass has listed the bucket yet\n")
        Bucket(gcs, late).put_zip(f"{PREFIX}/t/1.zip", sample_files("t1"))
        wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready once late has a version")
        assert many.versions("late", "t") == ["1"]
        assert proc.poll() is None


def test_a_pin_and_a_filter_in_one_source_entry_apply_to_that_source_only(many: Many) -> None:
    for bucket in (many.vision, many.nlp):
        for n in ("1", "2"):
            bucket.put_zip(f"{PREFIX}/resnet/{n}.zip", sample_files(f"{bucket.name}{n}"))
        bucket.put_zip(f"{PREFIX}/legacy/1.zip", sample_files("legacy"))
    many.two(
        vision='    pin: ["resnet=1"]\n    exclude:\n      - "/legacy/"\n', nlp="    keep: 1\n"
    )

    result = many.run("once")

    assert result.returncode == 0, result.stderr
    assert many.versions("vision", "resnet") == ["1"]
    assert many.versions("vision", "legacy") == []
    assert many.versions("nlp", "resnet") == ["2"]
    assert many.versions("nlp", "legacy") == ["1"]
    # the variable wins over the file: its pin replaces the entry's, in both sources
    again = many.run("once", env={"GCS_MODEL_SYNC_PIN": "resnet=2"})
    assert again.returncode == 0, again.stderr
    assert many.versions("vision", "resnet") == ["1", "2"]  # pinned at 2, no --keep: all below
    assert many.versions("nlp", "resnet") == ["2"]
