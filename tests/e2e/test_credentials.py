"""Credentials and endpoints, end to end: the real CLI finds Application Default Credentials as
in production (a service-account key file, or the GKE/GCE metadata server), and talks through
an authenticating proxy in front of the emulator, over TLS with a private CA if asked.

No STORAGE_EMULATOR_HOST here (it makes the product drop credentials): `--endpoint` points the
CLI at the proxy, which admits only tokens the stand-ins minted. HOME and CLOUDSDK_CONFIG are
empty temp dirs (no gcloud ADC file is found) and GCE_METADATA_HOST/IP point at loopback
(the metadata stand-in, or a port nothing listens on). An audit hook in the CLI process
refuses, and logs, any DNS lookup or connection to anything but loopback; each test checks
that log is empty.

The proxy is not a Google endpoint, so these scenarios pass `--endpoint-credentials`, the
explicit consent to send it our token; without it the proxy sees no Authorization header.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.e2e.conftest import PREFIX, Sync
from tests.support.authproxy import AuthProxy
from tests.support.cli import popen_cli, run_cli
from tests.support.emulator import Emulator, free_port
from tests.support.gcs import Bucket
from tests.support.metadata import MetadataServer
from tests.support.models import sample_files
from tests.support.oauth import OAuthServer, ServiceAccountKey
from tests.support.probes import metric, wait_for
from tests.support.tls import make_tls
from tests.support.tokens import TokenRegistry

READ_ONLY = "https://www.googleapis.com/auth/devstorage.read_only"
PASSWORD = "pw-s3cr3t"  # noqa: S105 - a user:password in --endpoint; never shown anywhere
PASSES = "gcs_model_sync_passes_total"

# Ambient settings that would steer google-auth or requests away from the stand-ins.
_UNSET = (
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_CLOUD_QUOTA_PROJECT",
    "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
    "GOOGLE_API_USE_CLIENT_CERTIFICATE",
    "GOOGLE_API_CERTIFICATE_CONFIG",
    "GOOGLE_SDK_EXPERIMENTAL_PYTHON_REGIONAL_ACCESS_BOUNDARY_LOOKUP_ENABLED",
    "GCE_METADATA_ROOT",
    "GCE_METADATA_MTLS_MODE",
    "NO_GCE_CHECK",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "CURL_CA_BUNDLE",
)


GUARD = """\
import os
import sys


def _loopback_only(event, args):
    if event == "socket.connect":
        host = args[1][0] if isinstance(args[1], tuple) else None
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if isinstance(host, bytes):
        host = host.decode()
    if host is None or host in ("localhost", "::1") or str(host).startswith("127."):
        return
    with open(os.environ["LOOPBACK_GUARD_LOG"], "a") as log:
        log.write(f"{event} {host}\\n")
    raise OSError(f"loopback guard: {event} {host} refused")


sys.addaudithook(_loopback_only)
"""


def adc_env(root: Path, metadata_host: str | None = None) -> dict[str, str | None]:
    """A hermetic ADC environment under `root`: no gcloud config, the metadata server on
    loopback, and the loopback guard (its log is root/off-loopback.log)."""
    home, guard = root / "home", root / "guard"
    home.mkdir(parents=True, exist_ok=True)
    guard.mkdir(parents=True, exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    host = metadata_host or f"127.0.0.1:{free_port()}"
    env: dict[str, str | None] = dict.fromkeys(_UNSET)
    env |= {
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / ".config" / "gcloud"),
        "GCE_METADATA_HOST": host,
        "GCE_METADATA_IP": host,
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(guard), os.environ.get("PYTHONPATH")])),
        "LOOPBACK_GUARD_LOG": str(root / "off-loopback.log"),
    }
    return env


class AdcSync(Sync):
    """`Sync` without the emulator variable: `--endpoint` at the proxy, credentials from ADC,
    sent to it only with `endpoint_credentials` (--endpoint-credentials)."""

    def __init__(
        self,
        bucket: Bucket,
        dest: Path,
        endpoint: str,
        env: dict[str, str | None],
        *,
        endpoint_credentials: bool = True,
    ):
        super().__init__(bucket, dest, endpoint)
        self.env = env
        self.endpoint_credentials = endpoint_credentials

    def off_loopback(self) -> list[str]:
        """What the CLI tried to reach beyond loopback (the guard refused each)."""
        log = Path(str(self.env["LOOPBACK_GUARD_LOG"]))
        return log.read_text().splitlines() if log.exists() else []

    def args(self, command: str, *extra: str) -> list[str]:
        trust = ["--endpoint-credentials"] if self.endpoint_credentials else []
        return [*super().args(command, *extra), "--endpoint", self.endpoint, *trust]

    def run(
        self, command: str, *extra: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(
            self.args(command, *extra),
            self.endpoint,
            env={**self.env, **(env or {})},
            timeout=timeout,
            emulator=False,
        )

    def start(self, command: str, *extra: str) -> subprocess.Popen[str]:
        return popen_cli(self.args(command, *extra), self.endpoint, env=self.env, emulator=False)


@pytest.fixture
def proxy(emulator: Emulator, tokens: TokenRegistry) -> Iterator[AuthProxy]:
    with AuthProxy(emulator.url, tokens) as p:
        yield p


@pytest.fixture
def keyed(bucket: Bucket, dest: Path, proxy: AuthProxy, key: ServiceAccountKey) -> AdcSync:
    """The CLI with GOOGLE_APPLICATION_CREDENTIALS=the key file, through the proxy."""
    env = adc_env(dest.parent / "adc") | {"GOOGLE_APPLICATION_CREDENTIALS": str(key.path)}
    return AdcSync(bucket, dest, proxy.url, env)


def minted(tokens: TokenRegistry, issuer: str, email: str) -> set[str]:
    return {t.value for t in tokens.issued(issuer=issuer, email=email)}


def lines_with(stderr: str, *needles: str) -> list[str]:
    return [line for line in stderr.splitlines() if all(n in line for n in needles)]


def test_service_account_key_file_syncs_through_token_endpoint(
    keyed: AdcSync, proxy: AuthProxy, key: ServiceAccountKey, tokens: TokenRegistry
) -> None:
    keyed.bucket.put_zip(keyed.key("m/1.zip"), sample_files("a"))
    keyed.bucket.put_tar(keyed.key("m/2.tar.gz"), sample_files("b"), gz=True)

    result = keyed.once()

    assert result.returncode == 0, result.stderr
    assert keyed.version("m/1") == sample_files("a")
    assert keyed.version("m/2") == sample_files("b")
    seen = proxy.records
    assert {r.kind for r in seen} >= {"list", "read"}
    assert {(r.identity, r.status) for r in seen} == {(key.email, 200)}
    assert {r.token for r in seen} <= minted(tokens, "oauth", key.email)
    assert {t.scopes for t in tokens.issued()} == {(READ_ONLY,)}
    assert keyed.off_loopback() == []


def test_metadata_server_credentials_sync(
    bucket: Bucket, dest: Path, proxy: AuthProxy, tokens: TokenRegistry
) -> None:
    with MetadataServer(tokens) as md:
        sync = AdcSync(bucket, dest, proxy.url, adc_env(dest.parent / "adc", md.host))
        bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

        result = sync.once()

        assert result.returncode == 0, result.stderr
        assert sync.version("m/1") == sample_files("a")
        assert md.token_requests >= 1
        assert md.refused == []
        seen = proxy.records
        assert {(r.identity, r.status) for r in seen} == {(md.email, 200)}
        assert {r.token for r in seen} <= minted(tokens, "metadata", md.email)
        assert {t.scopes for t in tokens.issued()} == {(READ_ONLY,)}
        assert sync.off_loopback() == []


def test_token_expiry_during_run_refreshes_and_never_fails_a_pass(
    keyed: AdcSync, proxy: AuthProxy, oauth: OAuthServer, tokens: TokenRegistry
) -> None:
    proxy.expire_after(3)
    keyed.bucket.put_zip(keyed.key("m/1.zip"), sample_files("a"))
    with keyed.sidecar("--log-format", "json") as (proc, port):
        wait_for(lambda: keyed.versions("m") == ["1"], what="first version")
        keyed.bucket.put_zip(keyed.key("m/2.zip"), sample_files("b"))
        wait_for(lambda: keyed.versions("m") == ["1", "2"], what="second version")
        keyed.bucket.put_tar(keyed.key("m/3.tar"), sample_files("c"), top="3")
        wait_for(lambda: keyed.versions("m") == ["1", "2", "3"], what="third version")
        wait_for(lambda: oauth.token_requests >= 5, what="tokens to expire and be refreshed")
        errors = metric(port, f'{PASSES}{{outcome="error"}}')
        passes = sum(metric(port, f'{PASSES}{{outcome="{o}"}}') for o in ("success", "noop"))
        consecutive = metric(port, "gcs_model_sync_consecutive_failures")
    _, stderr = proc.communicate(timeout=15)

    assert (errors, consecutive) == (0, 0)
    assert passes >= 5
    assert keyed.version("m/3") == sample_files("c")
    assert proxy.statuses()[401] >= 3, "tokens never expired mid-run"
    assert len([t for t in tokens.issued() if t.refused]) >= 3, "no token was replaced"
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [e for e in logs if e["level"] == "error"] == []
    assert "Traceback" not in stderr
    assert keyed.off_loopback() == []


def test_refusal_with_fresh_token_fails_fast_naming_identity_and_permission(
    keyed: AdcSync, proxy: AuthProxy, key: ServiceAccountKey, oauth: OAuthServer
) -> None:
    keyed.bucket.put_zip(keyed.key("m/1.zip"), sample_files("a"))
    proxy.deny.add(key.email)

    started = time.monotonic()
    result = keyed.once()
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    assert elapsed < 10, f"took {elapsed:.1f}s: a refusal must not be retried"
    assert lines_with(result.stderr, key.email, "storage.objects.list"), result.stderr
    assert "Traceback" not in result.stderr
    assert [(r.kind, r.identity, r.status) for r in proxy.records] == [("list", key.email, 403)]
    assert oauth.token_requests == 1
    assert keyed.versions("m") == []
    assert keyed.off_loopback() == []


def test_tls_endpoint_with_private_ca(
    bucket: Bucket,
    dest: Path,
    emulator: Emulator,
    tokens: TokenRegistry,
    key: ServiceAccountKey,
    tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path / "tls")
    with AuthProxy(emulator.url, tokens, tls=tls) as proxy:
        env = adc_env(tmp_path / "adc") | {"GOOGLE_APPLICATION_CREDENTIALS": str(key.path)}
        sync = AdcSync(bucket, dest, proxy.url, env)
        bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

        sync.env["REQUESTS_CA_BUNDLE"] = None
        started = time.monotonic()
        untrusted = sync.once()
        elapsed = time.monotonic() - started

        assert untrusted.returncode == 1, untrusted.stderr
        assert elapsed < 10, f"took {elapsed:.1f}s: a certificate failure must not be retried"
        assert len(lines_with(untrusted.stderr.lower(), "certificate")) >= 1, untrusted.stderr
        assert "Traceback" not in untrusted.stderr
        assert proxy.records == []
        assert proxy.handshake_failures
        assert sync.versions("m") == []

        sync.env["REQUESTS_CA_BUNDLE"] = str(tls.ca_pem)
        trusted = sync.once()

        assert trusted.returncode == 0, trusted.stderr
        assert sync.version("m/1") == sample_files("a")
        assert {(r.identity, r.status) for r in proxy.records} == {(key.email, 200)}
        assert sync.off_loopback() == []


def test_requester_pays_needs_billing_project(keyed: AdcSync, proxy: AuthProxy) -> None:
    keyed.bucket.put_zip(keyed.key("m/1.zip"), sample_files("a"))
    keyed.bucket.put_tar(keyed.key("m/2.tar.gz"), sample_files("b"), gz=True)
    proxy.requester_pays.add(keyed.bucket.name)

    unbilled = keyed.once()

    assert unbilled.returncode == 1, unbilled.stderr
    assert lines_with(unbilled.stderr.lower(), "requester pays"), unbilled.stderr
    assert "Traceback" not in unbilled.stderr
    assert keyed.versions("m") == []
    assert {r.status for r in proxy.records} == {400}

    proxy.reset()
    billed = keyed.once("--billing-project", "my-proj")

    assert billed.returncode == 0, billed.stderr
    assert keyed.version("m/1") == sample_files("a")
    assert keyed.version("m/2") == sample_files("b")
    reads = [r for r in proxy.records if r.kind in ("list", "read", "metadata")]
    assert {r.kind for r in reads} >= {"list", "read"}
    assert [r for r in reads if r.params.get("userProject") != "my-proj"] == []
    assert {r.status for r in proxy.records} == {200}
    assert keyed.off_loopback() == []


def test_a_non_google_endpoint_gets_no_token_unless_endpoint_credentials_says_so(
    bucket: Bucket,
    dest: Path,
    proxy: AuthProxy,
    key: ServiceAccountKey,
    oauth: OAuthServer,
) -> None:
    env = adc_env(dest.parent / "adc") | {"GOOGLE_APPLICATION_CREDENTIALS": str(key.path)}
    untrusted = AdcSync(bucket, dest, proxy.url, env, endpoint_credentials=False)
    bucket.put_zip(untrusted.key("m/1.zip"), sample_files("a"))

    refused = untrusted.once()

    assert proxy.records, "nothing reached the endpoint"
    assert [r.authorization for r in proxy.records] == [None] * len(proxy.records)
    assert oauth.token_requests == 0  # no token was even fetched for it
    assert refused.returncode == 1, refused.stderr
    assert lines_with(refused.stderr, f"gs://{bucket.name}", "--endpoint-credentials")
    assert "Traceback" not in refused.stderr
    assert untrusted.versions("m") == []

    proxy.reset()
    trusted = AdcSync(bucket, dest, proxy.url, env).once()

    assert trusted.returncode == 0, trusted.stderr
    assert untrusted.version("m/1") == sample_files("a")
    assert {(r.identity, r.status) for r in proxy.records} == {(key.email, 200)}
    assert untrusted.off_loopback() == []


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_password_in_the_endpoint_never_shows_on_the_start_line_nor_in_a_failure(
    bucket: Bucket, dest: Path, tmp_path: Path, fmt: str
) -> None:
    port = free_port()  # nothing listens there
    endpoint = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    shown = f"http://<redacted>@127.0.0.1:{port}"  # on the start line; errors drop it
    source = f"gs://{bucket.name}/{PREFIX}"
    args = ["once", "--source", source, "--dest", str(dest), "--endpoint", endpoint]
    args += ["--log-format", fmt, "--retry-attempts", "2", "--retry-deadline", "3"]

    result = run_cli(args, endpoint, env=adc_env(tmp_path / "adc"), emulator=False, timeout=60)

    assert PASSWORD not in result.stderr + result.stdout
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines_with(result.stderr, f"cannot reach http://127.0.0.1:{port}", f"gs://{bucket.name}")
    if fmt == "json":
        events = [json.loads(line) for line in result.stderr.splitlines()]
        start = next(e for e in events if e["event"] == "start")
        assert start["config"]["endpoint"] == shown


def test_a_user_and_password_in_the_endpoint_are_basic_auth_and_never_beside_a_token(
    bucket: Bucket, dest: Path, proxy: AuthProxy, key: ServiceAccountKey, oauth: OAuthServer
) -> None:
    """user:password@ is for a proxy's basic auth; the JSON API's Authorization header cannot
    carry it and a bearer token at once, so asking for both is a usage error."""
    endpoint = proxy.url.replace("://", f"://admin:{PASSWORD}@", 1)
    env = adc_env(dest.parent / "adc") | {"GOOGLE_APPLICATION_CREDENTIALS": str(key.path)}
    basic = AdcSync(bucket, dest, endpoint, env, endpoint_credentials=False)
    bucket.put_zip(basic.key("m/1.zip"), sample_files("a"))

    refused = basic.once()  # the stand-in admits only bearer tokens

    assert PASSWORD not in refused.stderr
    pair = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert {r.authorization for r in proxy.records} == {f"Basic {pair}"}
    assert refused.returncode == 1, refused.stderr
    assert oauth.token_requests == 0

    both = AdcSync(bucket, dest, endpoint, env).once()

    assert PASSWORD not in both.stderr
    assert both.returncode == 2, both.stderr
    [line] = both.stderr.strip().splitlines()
    assert "Authorization header" in line, line
    assert proxy.records == [r for r in proxy.records if r.authorization == f"Basic {pair}"]
    assert basic.off_loopback() == []
