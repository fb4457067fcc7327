"""One clear line for every error: the real CLI, its exit code, and never a traceback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Sync
from tests.e2e.test_credentials import AdcSync, adc_env
from tests.support.cli import run_cli
from tests.support.emulator import free_port
from tests.support.faultproxy import Fault, FaultProxy, Rule
from tests.support.models import sample_files

FAST = ("--retry-attempts", "3", "--retry-deadline", "5")


def error_lines(stderr: str) -> list[str]:
    """The lines that report a failure: ERROR log lines and the CLI's own `error:` line."""
    return [
        line
        for line in stderr.splitlines()
        if " ERROR " in line or line.startswith("gcs-model-sync: error:")
    ]


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    """Exit `code`, no traceback, and a single line that names every one of `names`."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    naming = [line for line in error_lines(result.stderr) if all(n in line for n in names)]
    assert len(naming) == 1, result.stderr
    return naming[0]


@pytest.mark.parametrize("command", ["once", "plan"])
def test_listing_that_exhausts_its_retries_is_one_line_exit_1(
    proxied: Sync, proxy: FaultProxy, command: str
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=503))

    result = proxied.run(command, *FAST, timeout=60)

    line = assert_one_line(result, 1, f"gs://{proxied.bucket.name}", "503")
    assert "--retry-attempts" in line or "tries" in line  # says that it gave up, and why
    assert proxy.counts["list"] == 3  # one budget, no retry around it
    assert proxied.versions("m") == []


BAD_BUCKETS = [
    ("Bad_Bucket!", "lowercase"),
    ("ml-models-", "start and end"),
    ("-ml-models", "start and end"),
    ("UPPER", "lowercase"),
    ("ab", "3"),
    ("a" * 64, "63"),
    ("192.168.5.4", "IP address"),
    ("goog-models", "goog"),
    ("my-google-models", "google"),
]


@pytest.mark.parametrize(("name", "rule"), BAD_BUCKETS)
@pytest.mark.parametrize("command", ["once", "plan"])
def test_invalid_bucket_names_are_usage_errors(
    sync: Sync, command: str, name: str, rule: str
) -> None:
    result = sync.run(command, "--source", f"gs://{name}/x", timeout=30)

    line = assert_one_line(result, 2, repr(f"gs://{name}/x"))
    assert "--source" in line
    assert rule in line
    assert not sync.dest.exists()


@pytest.mark.parametrize(("name", "rule"), BAD_BUCKETS[:2])
def test_invalid_bucket_names_stop_run_at_start_rather_than_looping(
    sync: Sync, name: str, rule: str
) -> None:
    started = time.monotonic()
    result = sync.run("run", "--interval", "0.3", "--source", f"gs://{name}/x", timeout=15)

    assert time.monotonic() - started < 10
    line = assert_one_line(result, 2, repr(f"gs://{name}/x"))
    assert rule in line
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("command", ["once", "plan"])
def test_unreachable_endpoint_is_one_line_naming_it(sync: Sync, command: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli(
        [*sync.args(command, "--anonymous", "--endpoint", endpoint, *FAST)],
        endpoint,
        emulator=False,
        timeout=60,
    )

    line = assert_one_line(result, 1, endpoint, f"gs://{sync.bucket.name}")
    assert "cannot reach" in line
    assert "HTTPConnectionPool" not in result.stderr
    assert "Max retries exceeded" not in result.stderr


@pytest.mark.parametrize(
    ("flag", "env"),
    [("--dest", None), ("--source", None), (None, "GCS_MODEL_SYNC_DEST")],
)
@pytest.mark.parametrize("command", ["once", "plan", "run"])
def test_empty_dest_is_a_usage_error(
    sync: Sync,
    tmp_path_factory: pytest.TempPathFactory,
    command: str,
    flag: str | None,
    env: str | None,
) -> None:
    cwd = tmp_path_factory.mktemp("cwd")
    args = sync.args(command)
    if flag:
        args[args.index(flag) + 1] = ""
    else:
        args.remove("--dest")
        args.remove(str(sync.dest))
    result = run_cli(args, sync.endpoint, env={env: ""} if env else None, timeout=15, cwd=cwd)

    assert_one_line(result, 2, flag or "--dest")
    assert list(cwd.iterdir()) == []  # nothing was written into the working directory


def test_persistent_503_on_one_object_costs_one_request_budget(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxied.bucket.put_zip(proxied.key("m/2.zip"), sample_files("b"))
    proxied.bucket.put_folder(proxied.key("f/3"), sample_files("c"))
    proxy.add_rule(Rule(kind="download", path="m/2.zip", fault=Fault.STATUS, status=503))
    started = time.monotonic()

    result = proxied.run("once", *FAST, timeout=60)

    reads = [r for r in proxy.records if r.kind == "download" and r.name == proxied.key("m/2.zip")]
    assert len(reads) <= 3  # --retry-attempts, not attempts squared
    assert time.monotonic() - started < 10
    line = assert_one_line(result, 1, f"gs://{proxied.bucket.name}/models/m/2.zip", "503")
    assert "tries" in line
    # the rest of the pass goes on
    assert proxied.versions("m") == ["1"]
    assert proxied.version("m/1") == sample_files("a")
    assert proxied.version("f/3") == sample_files("c")


# Values a newcomer or a typo gives: none may reach a pass, a socket or a timer. Durations
# take seconds or 90s/5m/1h30m and stop at 7d; sizes stop at 1P; --workers/--connections
# at 1024.
_NOT_FINITE = ["inf", "nan", "-1", "1e300", "1e10"]
DURATIONS = ["settle", "retry-deadline", "request-timeout", "lock-timeout", "hook-timeout",
             "server-timeout", "interval", "stuck-after"]  # fmt: skip
SIZES = ["slice-size", "slice-threshold", "bwlimit", "max-version-size", "min-free-space"]
COUNTS = ["keep", "max-delete", "retry-attempts", "list-page-size", "workers", "connections",
          "max-failures", "http-port"]  # fmt: skip
HOSTILE = (
    [(f"--{o}", v) for o in DURATIONS for v in _NOT_FINITE]
    + [(f"--{o}", "0") for o in DURATIONS if o not in ("settle", "lock-timeout")]
    + [(f"--{o}", v) for o in SIZES for v in ["inf", "nan", "-1", "1e300", "2P"]]
    + [("--max-version-size", "0"), ("--bwlimit", "0")]
    + [(f"--{o}", v) for o in COUNTS for v in ["inf", "1e10", "-1"]]
    + [(f"--{o}", "0") for o in ("retry-attempts", "list-page-size", "workers", "connections")]
    + [("--workers", "100000000"), ("--connections", "100000000"), ("--jitter", "inf")]
    + [("--jitter", "nan"), ("--jitter", "-1"), ("--jitter", "1e300")]
    + [("--server", "http://[::1"), ("--ready-marker", "/_SUCCESS"), ("--ready-marker", "..")]
    + [("--ready-marker", "a/../../b"), ("--ready-marker", "")]
)


def assert_usage_error(result: subprocess.CompletedProcess[str], option: str) -> str:
    """Exit 2 before any pass: one line on stderr, naming the option; no traceback, no bug."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gcs-model-sync: error: "), result.stderr
    assert option in lines[0]
    for never in ("Traceback", "bug", "internal error"):
        assert never not in result.stderr
    return lines[0]


@pytest.mark.parametrize(("option", "value"), HOSTILE)
def test_hostile_option_values_are_one_line_usage_errors_naming_the_option(
    sync: Sync, option: str, value: str
) -> None:
    result = sync.run("run", "--max-failures", "1", "--interval", "1", option, value, timeout=30)

    assert_usage_error(result, option)
    assert not sync.dest.exists()  # refused before any pass


@pytest.mark.parametrize(
    ("variable", "value", "option"),
    [
        ("GCS_MODEL_SYNC_INTERVAL", "1e300", "--interval"),
        ("GCS_MODEL_SYNC_REQUEST_TIMEOUT", "inf", "--request-timeout"),
        ("GCS_MODEL_SYNC_BWLIMIT", "1e300", "--bwlimit"),
        ("GCS_MODEL_SYNC_WORKERS", "1e10", "--workers"),
    ],
)
def test_hostile_environment_values_are_one_line_usage_errors_naming_the_option(
    sync: Sync, variable: str, value: str, option: str
) -> None:
    result = sync.run("run", "--max-failures", "1", env={variable: value}, timeout=30)

    assert_usage_error(result, option)
    assert not sync.dest.exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["once", "--interval", "60"], "--interval belongs to `run`"),
        (["plan", "--on-change", "true"], "--on-change belongs to `once` and `run`"),
    ],
)
def test_an_option_of_another_command_is_one_line_saying_where_it_belongs(
    sync: Sync, argv: list[str], says: str
) -> None:
    result = sync.run(argv[0], *argv[1:], timeout=30)

    line = assert_usage_error(result, argv[1])
    assert says in line
    assert not sync.dest.exists()


def test_bare_command_prints_the_help_and_h_is_help(sync: Sync) -> None:
    bare = run_cli([], sync.endpoint, timeout=30)
    short = run_cli(["run", "-h"], sync.endpoint, timeout=30)

    assert bare.returncode == 2  # click's convention for a missing command
    assert bare.stderr.startswith("Usage: gcs-model-sync [OPTIONS] COMMAND")
    assert "error" not in bare.stderr.replace("configuration error", "")
    assert (short.returncode, short.stderr) == (0, "")
    assert short.stdout.startswith("Usage: gcs-model-sync run [OPTIONS]")


BAD_KEY_FILES = [
    (None, "was not found"),
    ("{}", "does not have a valid type"),
    ("not json at all", "is not a valid json file"),
    ('{"type": "service_account"}', "not in the expected format, missing fields"),
]


@pytest.mark.parametrize(("content", "reason"), BAD_KEY_FILES)
@pytest.mark.parametrize("command", ["once", "plan"])
def test_unusable_key_file_is_one_line_naming_the_file_and_what_is_wrong(
    sync: Sync, tmp_path: Path, command: str, content: str | None, reason: str
) -> None:
    key = tmp_path / "key.json"
    if content is not None:
        key.write_text(content)
    env = adc_env(tmp_path / "adc") | {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    nowhere = f"http://127.0.0.1:{free_port()}"  # never asked: the key fails first
    adc = AdcSync(sync.bucket, sync.dest, nowhere, env)

    result = adc.run(command, timeout=30)

    assert_one_line(result, 2, f"GOOGLE_APPLICATION_CREDENTIALS={key}", reason)
    assert "no Google credentials found" not in result.stderr
    assert adc.off_loopback() == []


@pytest.mark.parametrize(
    ("hook", "says"),
    [
        ("/nonexistent/notify --all", "'/nonexistent/notify' is not an executable program"),
        ("notify 'unclosed", "cannot be parsed"),
        ("   ", "is empty"),
    ],
)
@pytest.mark.parametrize("command", ["once", "run"])
def test_an_on_change_that_cannot_start_is_a_usage_error_before_any_pass(
    sync: Sync, command: str, hook: str, says: str
) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    loop = ["--interval", "1", "--max-failures", "1"] if command == "run" else []
    result = sync.run(command, "--on-change", hook, *loop, timeout=20)

    line = assert_usage_error(result, "--on-change")
    assert says in line
    assert sync.versions("m") == []  # found at start, not after a change
