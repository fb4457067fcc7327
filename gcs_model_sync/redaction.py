"""One redaction for everything shown: a URL's user:password and the credentials a command line
carries (`-u user:pw`, `--password X`, `Authorization:` headers, `token=X`) become <redacted>.

Logs (every line, text and JSON), the CLI's error lines and the start line's configuration all
go through `redact`. The patterns are tight enough for free text ("an access token: …", "basic
auth", `--keep 2` stay as they are), so they can run on every line. `secrets_in` and `scrub`
also hide a command's own secret values wherever its output repeats them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import overload

HIDDEN = "<redacted>"
MIN_SECRET = 4  # shorter values are not scrubbed from free text: they would mangle words

_VALUE = r"""(?:'[^']*'|"[^"]*"|[^\s'"\\&]+)"""
_FLAG_WORD = r"(?:token|secret|password|passwd|passphrase|key)"
# not "credentials": GOOGLE_APPLICATION_CREDENTIALS=FILE names a file, which a user must see
_PARAM_WORD = r"(?:token|secret|password|passwd|passphrase|key|signature)"

# scheme://userinfo@ (userinfo cannot hold / ? # @ or spaces)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@'\"\\]+)@")
# Authorization: Bearer X / Authorization: X / X-Api-Key: X / Cookie: X
_HEADER = re.compile(
    r"(?i)(?<![\w-])((?:proxy-)?authorization|cookie|private-token"
    r"|x-[\w-]*(?:key|token|secret|auth|password)[\w-]*)(\s*:[ \t]*)"
    r"(?:((?:bearer|basic|token|digest|negotiate)[ \t]+)([^\s'\"\\]+)|([^'\"\\\r\n]+))"
)
# -u user:pw, -uuser:pw, --user user:pw, --user=user:pw (a user name alone is no secret)
_USER_FLAG = re.compile(
    r"(?<![\w-])(-u|--user|--proxy-user|--auth)(=|[ \t]+|(?<=-u))(" + _VALUE + ")"
)
# --password X, --api-token=X, -passphrase X: the flag's name says what its value is
_SECRET_FLAG = re.compile(
    r"(?i)(?<![\w-])(--?[\w-]*" + _FLAG_WORD + r"[\w-]*)(=|[ \t]+(?=[^\s-]))(" + _VALUE + ")"
)
# token=X, access_token=X, X-Goog-Signature=X, PASSWORD=X
_SECRET_PARAM = re.compile(r"(?i)(?<![\w.-])([\w.-]*" + _PARAM_WORD + r"[\w.-]*=)(" + _VALUE + ")")
# a bare `Bearer <token>` (capitalized, as in a header value) outside a header
_BEARER = re.compile(r"\b(Bearer[ \t]+)([A-Za-z0-9._~+/-]{8,}=*)")


def _user_value(value: str) -> bool:
    return ":" in value


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, str | None]]]


def _userinfo(m: re.Match[str]) -> tuple[str, str | None]:
    return f"{m[1]}{HIDDEN}@", m[2]


def _header(m: re.Match[str]) -> tuple[str, str | None]:
    if m[3]:
        return f"{m[1]}{m[2]}{m[3]}{HIDDEN}", m[4]
    value = m[5].rstrip()
    return f"{m[1]}{m[2]}{HIDDEN}{m[5][len(value) :]}", value


def _user_flag(m: re.Match[str]) -> tuple[str, str | None]:
    if not _user_value(m[3]):
        return m[0], None
    return f"{m[1]}{m[2]}{HIDDEN}", m[3]


def _flag(m: re.Match[str]) -> tuple[str, str | None]:
    return f"{m[1]}{m[2]}{HIDDEN}", m[3]


def _param(m: re.Match[str]) -> tuple[str, str | None]:
    return f"{m[1]}{HIDDEN}", m[2]


def _bearer(m: re.Match[str]) -> tuple[str, str | None]:
    return f"{m[1]}{HIDDEN}", m[2]


_RULES: list[_Rule] = [
    (_USERINFO, _userinfo),
    (_HEADER, _header),
    (_USER_FLAG, _user_flag),
    (_SECRET_FLAG, _flag),
    (_SECRET_PARAM, _param),
    (_BEARER, _bearer),
]


def _apply(text: str, found: set[str] | None) -> str:
    for pattern, rule in _RULES:

        def sub(m: re.Match[str], rule: Callable[..., tuple[str, str | None]] = rule) -> str:
            shown, value = rule(m)
            if found is not None and value and value != HIDDEN:
                found.add(value)
            return shown

        text = pattern.sub(sub, text)
    return text


@overload
def redact(text: str) -> str: ...
@overload
def redact(text: None) -> None: ...
def redact(text: str | None) -> str | None:
    """`text` with every credential the patterns know replaced by <redacted>."""
    if text is None:
        return None
    return _apply(text, None)


def secrets_in(text: str) -> frozenset[str]:
    """The values `redact` hides in `text` (unquoted; a user:password's password alone too),
    those long enough to be scrubbed from other text."""
    found: set[str] = set()
    _apply(text, found)
    values = set()
    for value in found:
        value = value.strip("'\"")
        values.add(value)
        user, sep, password = value.partition(":")
        if sep and user:
            values.add(password)
    return frozenset(v for v in values if len(v) >= MIN_SECRET and v != HIDDEN)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`redact(text)`, and every one of `secrets` hidden wherever it still shows."""
    text = redact(text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def shown_url(url: str) -> str:
    """A URL as messages show it: without its user:password@ part."""
    from urllib.parse import urlsplit

    try:
        split = urlsplit(url)
    except ValueError:
        return redact(url)
    if split.netloc:
        split = split._replace(netloc=split.netloc.rpartition("@")[2])
    elif "@" in url:  # no scheme (user:pw@host:port): all before the host may be secret
        return f"{HIDDEN}@{redact(url.rpartition('@')[2])}"
    return redact(split.geturl())
