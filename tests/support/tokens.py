"""What the credential stand-ins share: the tokens they mint, and the loopback server they run.

The OAuth token endpoint (oauth.py) and the metadata server (metadata.py) issue tokens into one
`TokenRegistry`; the authenticating proxy (authproxy.py) accepts a bearer token only while the
registry says it is live. Real Google access tokens are opaque strings that expire after
`expires_in` seconds; here a token can also be made to die after N uses, so a test can have
tokens expire mid-run without waiting an hour.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

__all__ = ["Token", "TokenRegistry"]


@dataclass(eq=False)
class Token:
    """One issued access token; `uses` counts the requests that presented it while live."""

    value: str
    email: str
    scopes: tuple[str, ...]
    issuer: str
    issued_at: float
    expires_in: int
    uses: int = 0
    refused: int = 0

    @property
    def expires_at(self) -> float:
        return self.issued_at + self.expires_in


class TokenRegistry:
    """Thread-safe: issue tokens, and check (and count) each use of one."""

    def __init__(self, lifetime: int = 3599) -> None:
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._max_uses: int | None = None

    def issue(self, email: str, scopes: tuple[str, ...], issuer: str) -> Token:
        """A fresh token for `email`; `issuer` says which stand-in minted it."""
        value = "ya29.test-" + secrets.token_urlsafe(24)
        token = Token(value, email, tuple(scopes), issuer, time.time(), self.lifetime)
        with self._lock:
            self._tokens[value] = token
        return token

    def expire_after(self, uses: int | None) -> None:
        """From now on a token is refused once it has been used `uses` times (None: never)."""
        if uses is not None and uses < 1:
            raise ValueError("uses must be at least 1")
        with self._lock:
            self._max_uses = uses

    def use(self, value: str) -> Token | None:
        """The live token `value`, its use counted; None when unknown, expired or used up."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None:
                return None
            used_up = self._max_uses is not None and token.uses >= self._max_uses
            if used_up or time.time() >= token.expires_at:
                token.refused += 1
                return None
            token.uses += 1
            return token

    def get(self, value: str) -> Token | None:
        with self._lock:
            return self._tokens.get(value)

    def issued(self, issuer: str | None = None, email: str | None = None) -> list[Token]:
        """Tokens issued so far, oldest first, optionally only those of one issuer or email."""
        with self._lock:
            tokens = list(self._tokens.values())
        return [
            t
            for t in tokens
            if (issuer is None or t.issuer == issuer) and (email is None or t.email == email)
        ]
