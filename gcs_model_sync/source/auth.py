"""How this process reaches the bucket: the endpoint, Google credentials or none, and one
pooled session and storage client, made once and shared by every pass.

Which endpoint gets the credentials is endpoint.py's rule; this module applies it, and says
what a refusal means when the credentials were withheld or cannot be found.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

# Loaded with this module (which `--help` never imports), so its ~0.3 s is start-up, paid once
# per process, and not part of every pass's time in the `run` loop's metrics and logs.
import google.cloud.storage  # noqa: F401

from gcs_model_sync import endpoint
from gcs_model_sync.config import Config
from gcs_model_sync.errors import ConfigError
from gcs_model_sync.logs import event

if TYPE_CHECKING:
    import requests

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
DEFAULT_ENDPOINT = "https://storage.googleapis.com"


@dataclass(frozen=True, slots=True)
class Settings:
    """What decides the session: equal settings share one (the cache key of `connect`)."""

    anonymous: bool
    project: str | None
    connections: int
    emulator: str | None  # STORAGE_EMULATOR_HOST
    endpoint: str | None = None
    endpoint_credentials: bool = False

    @classmethod
    def of(cls, config: Config) -> Settings:
        return cls(
            config.anonymous,
            config.project,
            max(config.workers, config.connections),
            os.environ.get("STORAGE_EMULATOR_HOST"),
            config.endpoint,
            config.endpoint_credentials,
        )

    @property
    def sends(self) -> bool:
        """Whether Google credentials go to this endpoint (endpoint.py decides)."""
        return endpoint.sends_credentials(
            self.endpoint,
            anonymous=self.anonymous,
            endpoint_credentials=self.endpoint_credentials,
            emulator=self.emulator,
        )


class Connection(NamedTuple):
    """One process's way to the bucket."""

    session: Any  # requests.Session, or google-auth's AuthorizedSession
    client: Any  # google.cloud.storage.Client over that session
    base: str  # the JSON API root, without any user:password
    unsent: str  # appended to a refusal when credentials were withheld from the endpoint


@functools.lru_cache(maxsize=4)
def connect(settings: Settings) -> Connection:
    """Session, storage client and base URL for the emulator, a public bucket, or ADC.

    `settings.endpoint` replaces storage.googleapis.com (Private Service Connect, a proxy);
    Google credentials go to it only when it is Google's or `endpoint_credentials` says so.
    STORAGE_EMULATOR_HOST, without an endpoint, drops them as the library does. A
    user:password in the URL becomes the session's basic auth, so that no URL handed to the
    libraries (and no message they build from one) carries it.

    Made once per process: the `run` loop's passes share credentials (a token is refreshed
    only when it expires, not fetched every poll) and keep-alive connections.
    """
    import requests
    from google.cloud import storage

    # google-cloud-storage >= 3.x fetches bucket metadata in the background to decorate trace
    # spans: one more request per pass, needing storage.buckets.get. Polling must not pay it.
    os.environ.setdefault("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    if settings.endpoint:
        raw = settings.endpoint
    elif settings.emulator:
        raw = settings.emulator if "://" in settings.emulator else f"http://{settings.emulator}"
    else:
        raw = DEFAULT_ENDPOINT
    base, basic_auth = endpoint.split_userinfo(raw)
    if settings.sends:
        credentials, session, project = _google(settings.project)
    else:
        anonymous_credentials: Any = importlib.import_module("google.auth.credentials")
        credentials = anonymous_credentials.AnonymousCredentials()
        session = requests.Session()
        local = "emulator" if settings.emulator and not settings.endpoint else "anonymous"
        project = settings.project or local
        if settings.endpoint and not settings.anonymous:
            event(
                logging.INFO,
                "endpoint",
                f"--endpoint {base} is not https://*.googleapis.com: no Google credentials "
                "are sent to it (--endpoint-credentials sends them)",
                endpoint=base,
            )
    if basic_auth is not None:  # a proxy's basic auth; endpoint.problem refused it beside a token
        session.auth = basic_auth
    base = base.rstrip("/")
    if not urllib.request.getproxies():
        # requests re-reads proxy variables and .netrc on every request otherwise: ~10% of the
        # CPU of a pass over many small objects. With a proxy configured we keep that behaviour.
        session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=settings.connections + 4, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.hooks["response"].append(_note_date)
    client = storage.Client(
        project=project,
        credentials=credentials,
        _http=session,
        client_options={"api_endpoint": base},
    )
    return Connection(session, client, base, _unsent(settings, base))


def _google(project: str | None) -> tuple[Any, Any, str]:
    """Application Default Credentials, an authorized session, and the project to bill."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    transport: Any = importlib.import_module("google.auth.transport.requests")
    try:
        credentials, adc_project = google.auth.default(scopes=[READ_ONLY_SCOPE])
    except DefaultCredentialsError as exc:
        if key_file := os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            raise ConfigError(
                f"GOOGLE_APPLICATION_CREDENTIALS={key_file} cannot be used: {_auth_reason(exc)}"
            ) from exc
        raise ConfigError(
            "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS, use workload "
            "identity or `gcloud auth application-default login`, or pass --anonymous"
        ) from exc
    return (
        credentials,
        transport.AuthorizedSession(credentials),
        project or adc_project or "unknown",
    )


def _unsent(settings: Settings, base: str) -> str:
    """A refusal by an endpoint that was sent no credentials says how to send them."""
    if not settings.endpoint or settings.anonymous or settings.sends:
        return ""
    return (
        f" (no Google credentials were sent to {base}, which is not "
        "https://*.googleapis.com: --endpoint-credentials sends them)"
    )


def who(session: Any) -> str:
    """Whose permission was refused, for a 403's message."""
    creds = getattr(session, "credentials", None)
    email = getattr(creds, "service_account_email", None)
    return f"as {email}" if email else "check the caller's IAM roles"


def _auth_reason(exc: BaseException) -> str:
    """google-auth's sentence, whose args may be (sentence, cause): `File k.json is not a valid
    json file (Expecting value: line 1 column 1 (char 0))`."""
    parts = [str(a).strip().rstrip(".") for a in exc.args if str(a).strip()] or [type(exc).__name__]
    head, *causes = parts
    return (f"{head} ({'; '.join(causes)})" if causes else head).splitlines()[0][:300]


# The `Date` of the last JSON API response in this thread (listing is single-threaded per pass).
_response_date = threading.local()


def _note_date(resp: requests.Response, *args: object, **kwargs: object) -> None:
    _response_date.value = resp.headers.get("Date")


def forget_date() -> None:
    _response_date.value = None


def last_date() -> str | None:
    """The HTTP `Date` of this thread's last response since `forget_date`."""
    value: str | None = getattr(_response_date, "value", None)
    return value
