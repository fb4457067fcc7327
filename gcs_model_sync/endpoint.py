"""Which JSON API endpoint gets our Google credentials, and what a user:password in one means.

An access token is a bearer credential: whoever receives it can read the bucket for an hour
with our identity. So it goes only to Google itself, `https://*.googleapis.com` (that covers
storage.googleapis.com, private. and restricted.googleapis.com, Private Service Connect's
`*.p.googleapis.com`, mTLS `storage.mtls.googleapis.com` and regional endpoints), never in
clear text, and to any other --endpoint only with --endpoint-credentials, the user's word that
it is theirs (a corporate proxy, a test server).

`http://user:password@host` is sent as basic auth, as --server's is (a proxy in front of an
emulator or a GCS-compatible store). The JSON API carries the bearer token in the same
Authorization header, so a user:password where the token is sent is a usage error rather than
one silently replacing the other.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from gcs_model_sync.redaction import redact

GOOGLE_DOMAIN = "googleapis.com"


def is_google(url: str) -> bool:
    """Whether `url` is Google's own JSON API over TLS: https, host *.googleapis.com."""
    try:
        split = urlsplit(url)
        host = split.hostname
    except ValueError:
        return False
    if split.scheme != "https" or not host:
        return False
    host = host.rstrip(".")
    return host == GOOGLE_DOMAIN or host.endswith("." + GOOGLE_DOMAIN)


def sends_credentials(
    endpoint: str | None, *, anonymous: bool, endpoint_credentials: bool, emulator: str | None
) -> bool:
    """Whether Google credentials go with the requests: never with --anonymous; to a Google
    endpoint (the default one included); to another --endpoint only when asked; never to
    STORAGE_EMULATOR_HOST (as google-cloud-storage does), which --endpoint overrides."""
    if anonymous:
        return False
    if endpoint:
        return is_google(endpoint) or endpoint_credentials
    return not emulator


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """(`url` without user:password@, the user and password unquoted, or None)."""
    split = urlsplit(url)
    userinfo, at, host = split.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    return split._replace(netloc=host).geturl(), (unquote(user), unquote(password))


def problem(endpoint: str | None, *, anonymous: bool, endpoint_credentials: bool) -> str | None:
    """What is wrong with --endpoint and its credentials, as a usage error; None when nothing."""
    if endpoint is None:
        return None
    shown = redact(endpoint)
    try:
        split = urlsplit(endpoint)
        split.port  # noqa: B018  (raises on a port that is not a number)
        host = split.hostname
    except ValueError:
        host = None
    if not endpoint.startswith(("http://", "https://")):
        return f"--endpoint must be an http:// or https:// URL, got {shown!r}"
    if not host:
        return f"--endpoint {shown}: not an http(s)://host[:port][/path] URL"
    sends = sends_credentials(
        endpoint, anonymous=anonymous, endpoint_credentials=endpoint_credentials, emulator=None
    )
    if sends and split_userinfo(endpoint)[1] is not None:
        return (
            f"--endpoint {shown}: a user:password would go as basic auth in the Authorization "
            "header that carries the Google token here; drop it, or send no token (--anonymous"
            + (", or no --endpoint-credentials)" if endpoint_credentials else ")")
        )
    return None
