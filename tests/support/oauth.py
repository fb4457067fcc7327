"""An OAuth 2.0 token endpoint for service-account keys (the JWT-bearer grant), on loopback.

What it answers is what Google documents, so google-auth's real code path runs against it:

- Google, "Using OAuth 2.0 for Server to Server Applications", section "HTTP/REST"
  (https://developers.google.com/identity/protocols/oauth2/service-account#httprest): the
  client POSTs `application/x-www-form-urlencoded` with
  `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion=<JWT>`. The JWT
  header is `{"alg": "RS256", "typ": "JWT", "kid": <private_key_id>}`; its claims are `iss`
  (the service account's email), `scope` (space-delimited), `aud` (for an access token always
  `https://oauth2.googleapis.com/token`), `iat` and `exp` (at most one hour after `iat`); it
  is signed with RSA SHA-256 by the key file's private key. Success is 200 with JSON
  `{"access_token", "scope", "token_type": "Bearer", "expires_in"}`; a refusal is 400 with
  `{"error": ..., "error_description": ...}` (RFC 6749 section 5.2).
- RFC 7523, "JWT Profile for OAuth 2.0 Client Authentication and Authorization Grants":
  section 2.1 (those two parameters, one JWT per assertion), section 3 (the JWT MUST carry
  `iss`, `aud` and `exp`, MUST be refused once expired, MUST be digitally signed and its
  signature checked) and section 3.1 (refusals are `invalid_grant`).

google-auth 2.63 (google/oauth2/service_account.py `_make_authorization_grant_assertion`,
google/oauth2/_client.py `jwt_grant`) sends exactly that request to the key file's
`token_uri`, with `aud` fixed to https://oauth2.googleapis.com/token whatever `token_uri` is.
The key files written here carry only what google-auth reads: no URL in them leaves loopback.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.standin import StandInHandler, StandInServer
from tests.support.tokens import TokenRegistry

__all__ = [
    "DEFAULT_EMAIL",
    "DEFAULT_PROJECT",
    "GOOGLE_TOKEN_AUDIENCE",
    "JWT_BEARER",
    "Grant",
    "OAuthServer",
    "ServiceAccountKey",
    "write_key_file",
]

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_PROJECT = "test-project"
DEFAULT_EMAIL = f"model-sync@{DEFAULT_PROJECT}.iam.gserviceaccount.com"
MAX_LIFETIME = 3600
LEEWAY = 300  # seconds of clock skew tolerated either way (RFC 7523 section 3, item 4)

_BAD_TIMES = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


@dataclass(frozen=True)
class ServiceAccountKey:
    """A key file on disk and what the token endpoint needs to check assertions made with it."""

    path: Path
    email: str
    project: str
    key_id: str
    public_key: rsa.RSAPublicKey


def write_key_file(
    path: Path, token_uri: str, *, email: str = DEFAULT_EMAIL, project: str = DEFAULT_PROJECT
) -> ServiceAccountKey:
    """Write a service-account JSON key with a fresh RSA key, its `token_uri` set as given."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_id = secrets.token_hex(20)
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**21)).rjust(21, "1"),
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=2)
    return ServiceAccountKey(path, email, project, key_id, private.public_key())


@dataclass(frozen=True)
class Grant:
    """One request to the token endpoint: who asked (if the JWT said), and how it ended."""

    email: str | None
    scopes: tuple[str, ...]
    status: int
    error: str | None = None
    description: str | None = None
    token: str | None = None


class _Refused(Exception):
    def __init__(self, error: str, description: str, email: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.email = email


class OAuthServer(StandInServer):
    """The token endpoint at `token_uri`; tokens go into `tokens`, every request into `grants`."""

    def __init__(self, tokens: TokenRegistry | None = None) -> None:
        super().__init__()
        self.handler = _TokenHandler
        self.tokens = tokens if tokens is not None else TokenRegistry()
        self._keys: dict[str, dict[str, rsa.RSAPublicKey]] = {}
        self._grants: list[Grant] = []
        self._state_lock = threading.Lock()

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def add_key(self, key: ServiceAccountKey) -> None:
        """Trust `key` for its service account, as uploading a public key to IAM does."""
        with self._state_lock:
            self._keys.setdefault(key.email, {})[key.key_id] = key.public_key

    def new_key_file(
        self, path: Path, *, email: str = DEFAULT_EMAIL, project: str = DEFAULT_PROJECT
    ) -> ServiceAccountKey:
        """A key file pointing at this endpoint, whose key this endpoint trusts."""
        key = write_key_file(path, self.token_uri, email=email, project=project)
        self.add_key(key)
        return key

    @property
    def grants(self) -> list[Grant]:
        with self._state_lock:
            return list(self._grants)

    @property
    def token_requests(self) -> int:
        with self._state_lock:
            return len(self._grants)

    def _record(self, grant: Grant) -> None:
        with self._state_lock:
            self._grants.append(grant)

    def _public_keys(self, email: str) -> dict[str, rsa.RSAPublicKey]:
        with self._state_lock:
            return dict(self._keys.get(email, {}))

    def grant(self, form: dict[str, list[str]]) -> tuple[str, tuple[str, ...]]:
        """Check a token request's form; (email, scopes) of a good one, else raise _Refused."""
        grant_type = form.get("grant_type", [""])
        if grant_type != [JWT_BEARER]:
            raise _Refused("unsupported_grant_type", f"Invalid grant_type: {grant_type[0]}")
        assertions = form.get("assertion", [])
        if len(assertions) != 1:
            raise _Refused("invalid_request", "Missing required parameter: assertion")
        header, claims, signing_input, signature = _parse_jwt(assertions[0])
        email = claims.get("iss")
        if not isinstance(email, str) or not email:
            raise _Refused("invalid_grant", "Invalid JWT: iss claim missing")
        keys = self._public_keys(email)
        if not keys:
            raise _Refused("invalid_grant", "Invalid grant: account not found", email)
        if header.get("alg") != "RS256":
            raise _Refused("invalid_grant", "Invalid JWT: alg must be RS256", email)
        kid = header.get("kid")
        candidates = [keys[kid]] if isinstance(kid, str) and kid in keys else []
        if kid is None:
            candidates = list(keys.values())
        if not any(_verifies(k, signature, signing_input) for k in candidates):
            raise _Refused("invalid_grant", "Invalid JWT Signature.", email)
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            raise _Refused("invalid_grant", "Invalid JWT: Failed audience check.", email)
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise _Refused("invalid_grant", _BAD_TIMES, email)
        now = time.time()
        if exp <= now - LEEWAY or iat > now + LEEWAY or exp - iat > MAX_LIFETIME or exp < iat:
            raise _Refused("invalid_grant", _BAD_TIMES, email)
        if "sub" in claims and claims["sub"] != email:
            raise _Refused(
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client "
                "not authorized for any of the scopes requested.",
                email,
            )
        scope = claims.get("scope")
        scopes = tuple(scope.split()) if isinstance(scope, str) else ()
        if not scopes:
            raise _Refused(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided.", email
            )
        return email, scopes


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _parse_jwt(assertion: str) -> tuple[dict[str, object], dict[str, object], bytes, bytes]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _Refused("invalid_grant", "Invalid JWT: not three dot-separated parts")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (binascii.Error, ValueError):
        raise _Refused("invalid_grant", "Invalid JWT: undecodable") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _Refused("invalid_grant", "Invalid JWT: header and claims must be objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature


def _verifies(key: rsa.RSAPublicKey, signature: bytes, signing_input: bytes) -> bool:
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


class _TokenHandler(StandInHandler):
    def do_POST(self) -> None:
        oauth = self.server.standin
        assert isinstance(oauth, OAuthServer)
        if self.path.split("?", 1)[0] != "/token":
            self.answer(404, "Not Found", "text/plain")
            return
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        body = self.read_body()
        if ctype != "application/x-www-form-urlencoded":
            self._refuse(oauth, _Refused("invalid_request", f"Bad Content-Type: {ctype}"))
            return
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        try:
            email, scopes = oauth.grant(form)
        except _Refused as refused:
            self._refuse(oauth, refused)
            return
        token = oauth.tokens.issue(email, scopes, issuer="oauth")
        oauth._record(Grant(email, scopes, 200, token=token.value))
        self.answer_json(
            200,
            {
                "access_token": token.value,
                "scope": " ".join(scopes),
                "token_type": "Bearer",
                "expires_in": token.expires_in,
            },
            {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"},
        )

    def do_GET(self) -> None:
        self.answer(405, "Method Not Allowed", "text/plain", {"Allow": "POST"})

    def _refuse(self, oauth: OAuthServer, refused: _Refused) -> None:
        oauth._record(Grant(refused.email, (), 400, refused.error, refused.description))
        self.answer_json(400, {"error": refused.error, "error_description": refused.description})
