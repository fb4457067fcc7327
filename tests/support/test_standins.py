# mypy: disable-error-code="no-untyped-call"
"""The credential stand-ins themselves, driven by google-auth's real credential classes where
one exists: the token endpoint, the metadata server, and the authenticating proxy."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from google.auth import compute_engine, crypt, jwt
from google.auth.compute_engine import _metadata
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from tests.support.authproxy import AuthProxy
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket
from tests.support.metadata import MetadataServer
from tests.support.oauth import (
    GOOGLE_TOKEN_AUDIENCE,
    JWT_BEARER,
    OAuthServer,
    ServiceAccountKey,
    write_key_file,
)
from tests.support.tls import TLSFiles, make_tls
from tests.support.tokens import TokenRegistry

READ_ONLY = "https://www.googleapis.com/auth/devstorage.read_only"


@pytest.fixture
def metadata(tokens: TokenRegistry) -> Iterator[MetadataServer]:
    with MetadataServer(tokens) as server:
        yield server


@pytest.fixture
def proxy(emulator: Emulator, tokens: TokenRegistry) -> Iterator[AuthProxy]:
    with AuthProxy(emulator.url, tokens) as p:
        yield p


def sa_credentials(key: ServiceAccountKey) -> Any:
    return service_account.Credentials.from_service_account_file(str(key.path), scopes=[READ_ONLY])


def list_url(base: str, bucket: Bucket, query: str = "prefix=") -> str:
    return f"{base}/storage/v1/b/{bucket.name}/o?{query}"


def media_url(base: str, bucket: Bucket, name: str, query: str = "") -> str:
    return f"{base}/download/storage/v1/b/{bucket.name}/o/{quote(name, safe='')}?alt=media{query}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# the token endpoint


def test_token_endpoint_grants_a_token_for_the_keys_signed_assertion(
    oauth: OAuthServer, key: ServiceAccountKey, tokens: TokenRegistry
) -> None:
    creds = sa_credentials(key)
    creds.refresh(Request())

    assert creds.valid
    (token,) = tokens.issued(issuer="oauth")
    assert (creds.token, token.email, token.scopes) == (token.value, key.email, (READ_ONLY,))
    assert [g.status for g in oauth.grants] == [200]


def test_token_endpoint_refuses_a_key_it_does_not_trust(
    oauth: OAuthServer, key: ServiceAccountKey, tmp_path: Path, tokens: TokenRegistry
) -> None:
    stranger = write_key_file(tmp_path / "other.json", oauth.token_uri, email=key.email)
    with pytest.raises(RefreshError, match=r"invalid_grant: Invalid JWT Signature\."):
        sa_credentials(stranger).refresh(Request())
    assert tokens.issued() == []


def assertion(key_file: Path, kid: str | None = None, **claims: object) -> str:
    now = int(time.time())
    signer = crypt.RSASigner.from_service_account_file(str(key_file))
    payload = {"iat": now, "exp": now + 3600, "aud": GOOGLE_TOKEN_AUDIENCE, "scope": READ_ONLY}
    payload |= {k: v for k, v in claims.items() if v is not None}
    return str(jwt.encode(signer, payload, key_id=kid).decode())


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({}, None, None),
        ({"iat": -7200, "exp": -3600}, "invalid_grant", "Token must be a short-lived token"),
        ({"exp": 7200}, "invalid_grant", "Token must be a short-lived token"),
        ({"aud": "self"}, "invalid_grant", "Failed audience check"),
        ({"iss": "nobody@test-project.iam.gserviceaccount.com"}, "invalid_grant", "not found"),
        ({"scope": ""}, "invalid_scope", "Invalid OAuth scope"),
    ],
    ids=["good", "expired", "too-long", "wrong-aud", "unknown-account", "no-scope"],
)
def test_token_endpoint_checks_each_claim(
    oauth: OAuthServer,
    key: ServiceAccountKey,
    claims: dict[str, Any],
    error: str | None,
    description: str | None,
) -> None:
    now = int(time.time())
    fixed = {k: now + v if k in ("iat", "exp") else v for k, v in claims.items()}
    if fixed.get("aud") == "self":
        fixed["aud"] = oauth.token_uri
    fixed.setdefault("iss", key.email)
    form = {"grant_type": JWT_BEARER, "assertion": assertion(key.path, key.key_id, **fixed)}

    resp = requests.post(oauth.token_uri, data=form, timeout=5)

    if error is None:
        assert resp.status_code == 200
        body = resp.json()
        assert body["token_type"] == "Bearer"  # noqa: S105
        assert body["scope"] == READ_ONLY
        assert body["expires_in"] > 3000
        return
    assert resp.status_code == 400
    assert resp.json()["error"] == error
    assert description in resp.json()["error_description"]


def test_token_endpoint_refuses_a_forged_signature_under_the_right_key_id(
    oauth: OAuthServer, key: ServiceAccountKey, tmp_path: Path
) -> None:
    forger = write_key_file(tmp_path / "forger.json", oauth.token_uri, email=key.email)
    forged = assertion(forger.path, key.key_id, iss=key.email)
    form = {"grant_type": JWT_BEARER, "assertion": forged}
    resp = requests.post(oauth.token_uri, data=form, timeout=5)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}


def test_token_endpoint_refuses_other_grant_types(oauth: OAuthServer) -> None:
    resp = requests.post(oauth.token_uri, data={"grant_type": "client_credentials"}, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"


# the metadata server


def test_metadata_server_serves_google_auth_default_as_on_gke(
    metadata: MetadataServer,
    tokens: TokenRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import google.auth

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GCE_METADATA_IP", metadata.host)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", metadata.host)  # read at import

    creds, project = google.auth.default(scopes=[READ_ONLY])
    creds.refresh(Request())

    assert isinstance(creds, compute_engine.Credentials)
    assert (project, creds.service_account_email) == ("test-project", metadata.email)
    assert creds.universe_domain == "googleapis.com"
    (token,) = tokens.issued(issuer="metadata")
    assert (creds.token, token.email, token.scopes) == (token.value, metadata.email, (READ_ONLY,))
    assert [(r.path, r.query) for r in metadata.requests] == [
        ("/", ""),
        ("/computeMetadata/v1/project/project-id", ""),
        ("/computeMetadata/v1/instance/service-accounts/default/", "recursive=true"),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token",
            "scopes=" + quote(READ_ONLY, safe=""),
        ),
        ("/computeMetadata/v1/universe/universe-domain", ""),
    ]
    assert all(r.flavored for r in metadata.requests)


def test_metadata_server_refuses_requests_without_the_flavor_header(
    metadata: MetadataServer, tokens: TokenRegistry
) -> None:
    url = f"http://{metadata.host}/computeMetadata/v1/instance/service-accounts/default/token"
    flavor = {"Metadata-Flavor": "Google"}

    bare = requests.get(url, timeout=5)
    forwarded = requests.get(url, headers={**flavor, "X-Forwarded-For": "10.0.0.1"}, timeout=5)
    wrong = requests.get(url, headers={"Metadata-Flavor": "google-ish"}, timeout=5)

    assert [bare.status_code, forwarded.status_code, wrong.status_code] == [403, 403, 403]
    assert tokens.issued() == []
    ok = requests.get(url, headers=flavor, timeout=5)
    assert ok.status_code == 200
    assert ok.headers["Metadata-Flavor"] == "Google"
    assert ok.json()["token_type"] == "Bearer"  # noqa: S105
    assert ok.json()["access_token"] == tokens.issued()[0].value


def test_metadata_server_answers_404_for_unknown_paths_and_redirects_directories(
    metadata: MetadataServer,
) -> None:
    root = f"http://{metadata.host}/computeMetadata/v1/"
    flavor = {"Metadata-Flavor": "Google"}

    unknown = requests.get(root + "instance/attributes/cluster-name", headers=flavor, timeout=5)
    other_sa = requests.get(
        root + "instance/service-accounts/x@y.iam.gserviceaccount.com/token",
        headers=flavor,
        timeout=5,
    )
    no_slash = requests.get(
        root + "instance/service-accounts/default", headers=flavor, timeout=5, allow_redirects=False
    )
    email = requests.get(
        root + "instance/service-accounts/default/email", headers=flavor, timeout=5
    )

    assert (unknown.status_code, other_sa.status_code) == (404, 404)
    assert unknown.headers["Metadata-Flavor"] == "Google"
    assert no_slash.status_code == 301
    assert no_slash.headers["Location"].endswith("/service-accounts/default/")
    assert (email.status_code, email.text) == (200, metadata.email)


def test_metadata_credentials_default_to_googleapis_when_universe_is_unknown(
    tokens: TokenRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MetadataServer(tokens, universe_domain=None) as md:
        monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", md.host)
        creds = compute_engine.Credentials()
        assert creds.universe_domain == "googleapis.com"
        assert md.requests[-1].status == 404


# the authenticating proxy


def test_proxy_refuses_missing_and_unknown_tokens_as_gcs_does(
    proxy: AuthProxy, bucket: Bucket
) -> None:
    url = list_url(proxy.url, bucket)

    missing = requests.get(url, timeout=5)
    unknown = requests.get(url, headers=bearer("ya29.made-up"), timeout=5)

    assert missing.status_code == unknown.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="https://accounts.google.com/"'
    assert 'error="invalid_token"' in unknown.headers["WWW-Authenticate"]
    assert missing.json()["error"]["errors"][0] == {
        "domain": "global",
        "reason": "required",
        "message": "Login Required",
        "locationType": "header",
        "location": "Authorization",
    }
    assert unknown.json()["error"]["errors"][0]["reason"] == "authError"
    assert [r.identity for r in proxy.records] == [None, None]


def test_proxy_forwards_a_live_token_and_expires_it_after_n_uses(
    proxy: AuthProxy, bucket: Bucket, tokens: TokenRegistry
) -> None:
    bucket.put("m/1.bin", b"x" * 10)
    token = tokens.issue("a@test-project.iam.gserviceaccount.com", (READ_ONLY,), "test")
    proxy.expire_after(2)
    url = list_url(proxy.url, bucket)

    statuses = [requests.get(url, headers=bearer(token.value), timeout=5) for _ in range(3)]

    assert [r.status_code for r in statuses] == [200, 200, 401]
    assert [i["name"] for i in statuses[0].json()["items"]] == ["m/1.bin"]
    assert (token.uses, token.refused) == (2, 1)
    assert [r.identity for r in proxy.records] == [token.email, token.email, None]


def test_proxy_streams_objects_to_the_real_client_and_its_token_refresh_works(
    proxy: AuthProxy, bucket: Bucket, key: ServiceAccountKey, oauth: OAuthServer
) -> None:
    from google.cloud import storage

    data = random.Random(3).randbytes(5 * 1024 * 1024 + 7)
    bucket.put("m/1.bin", data)
    client = storage.Client(
        project="test-project",
        credentials=sa_credentials(key),
        client_options={"api_endpoint": proxy.url},
    )
    proxy.expire_after(1)

    names = [b.name for b in client.list_blobs(bucket.name)]
    got = client.bucket(bucket.name).blob("m/1.bin").download_as_bytes(checksum="crc32c")

    assert names == ["m/1.bin"]
    assert got == data
    assert oauth.token_requests >= 2
    assert proxy.statuses()[401] >= 1
    assert {r.identity for r in proxy.records if r.status == 200} == {key.email}


def test_proxy_requires_user_project_on_requester_pays_buckets(
    proxy: AuthProxy, bucket: Bucket, tokens: TokenRegistry
) -> None:
    bucket.put("m/1.bin", b"abc")
    token = tokens.issue("a@test-project.iam.gserviceaccount.com", (READ_ONLY,), "test")
    proxy.requester_pays.add(bucket.name)
    auth = bearer(token.value)

    no_project = requests.get(list_url(proxy.url, bucket), headers=auth, timeout=5)
    no_project_read = requests.get(media_url(proxy.url, bucket, "m/1.bin"), headers=auth, timeout=5)
    billed = requests.get(list_url(proxy.url, bucket, "userProject=p"), headers=auth, timeout=5)
    billed_read = requests.get(
        media_url(proxy.url, bucket, "m/1.bin", "&userProject=p"), headers=auth, timeout=5
    )

    assert (no_project.status_code, no_project_read.status_code) == (400, 400)
    assert no_project.json()["error"]["errors"][0] == {
        "domain": "global",
        "reason": "required",
        "message": "Bucket is a requester pays bucket but no user project provided.",
    }
    assert (billed.status_code, billed_read.status_code, billed_read.content) == (200, 200, b"abc")


def test_proxy_denies_an_identity_naming_it_and_the_permission(
    proxy: AuthProxy, bucket: Bucket, tokens: TokenRegistry
) -> None:
    bucket.put("m/1.bin", b"abc")
    token = tokens.issue("denied@test-project.iam.gserviceaccount.com", (READ_ONLY,), "test")
    proxy.deny.add(token.email)

    listing = requests.get(list_url(proxy.url, bucket), headers=bearer(token.value), timeout=5)
    read = requests.get(
        media_url(proxy.url, bucket, "m/1.bin"), headers=bearer(token.value), timeout=5
    )

    assert (listing.status_code, read.status_code) == (403, 403)
    assert listing.json()["error"]["message"] == (
        "denied@test-project.iam.gserviceaccount.com does not have storage.objects.list access"
        " to the Google Cloud Storage bucket. Permission 'storage.objects.list' denied on"
        " resource (or it may not exist)."
    )
    assert "storage.objects.get access to the Google Cloud Storage object" in read.text
    assert listing.json()["error"]["errors"][0]["reason"] == "forbidden"


@pytest.fixture
def tls(tmp_path: Path) -> TLSFiles:
    return make_tls(tmp_path / "tls")


def test_proxy_serves_tls_that_verifies_only_with_the_private_ca(
    emulator: Emulator, tokens: TokenRegistry, tls: TLSFiles, bucket: Bucket
) -> None:
    token = tokens.issue("a@test-project.iam.gserviceaccount.com", (READ_ONLY,), "test")
    with AuthProxy(emulator.url, tokens, tls=tls) as proxy:
        assert proxy.url.startswith("https://127.0.0.1:")
        url = list_url(proxy.url, bucket)
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            requests.get(url, headers=bearer(token.value), timeout=5)  # certifi's CAs only
        resp = requests.get(url, headers=bearer(token.value), timeout=5, verify=str(tls.ca_pem))
        by_name = requests.get(
            url.replace("127.0.0.1", "localhost"),
            headers=bearer(token.value),
            timeout=5,
            verify=str(tls.ca_pem),
        )

        assert (resp.status_code, by_name.status_code) == (200, 200)
        assert len(proxy.handshake_failures) == 1
        assert len(proxy.records) == 2
