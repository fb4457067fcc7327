"""TF Serving: which versions it serves, from its RESTful "Model status API"
(https://www.tensorflow.org/tfx/serving/api_rest#model_status_api).

`GET /v1/models/<name>` answers the JSON form of GetModelStatusResponse,
`{"model_version_status": [{"version": "3", "state": "AVAILABLE",
"status": {"error_code": "OK", "error_message": ""}}]}`, one entry for every version the
server has handled (states START, LOADING, AVAILABLE, UNLOADING, END; the int64 version is a
JSON string). A model it does not know is 404 `{"error": "..."}`. It finds new versions on
disk itself: nothing is loaded.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from gcs_model_sync.servers.rest import Rest, one_line


class TFServing:
    loads = False

    def served(self, rest: Rest, name: str, wanted: set[int]) -> int | None:
        """The newest of `wanted` among the AVAILABLE versions."""
        status, body = rest.request(name, "GET", f"/v1/models/{quote(name, safe='')}")
        if status != 200:
            rest.not_ready(name, status, body)
            return None
        ready = _available(rest, name, body) & wanted
        return max(ready) if ready else None

    def load(self, rest: Rest, name: str, timeout: float) -> None:
        """Nothing to ask: the server polls its model base path."""


def _available(rest: Rest, name: str, body: bytes) -> set[int]:
    """The AVAILABLE versions in a GetModelStatusResponse."""
    try:
        doc = json.loads(body)
        entries = doc["model_version_status"]
        if not isinstance(entries, list):
            raise TypeError(entries)
        return {
            int(entry.get("version", 0)) for entry in entries if entry.get("state") == "AVAILABLE"
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        snippet = one_line(body.decode("utf-8", "replace"))[:80]
        raise rest.error(name, f"not a TF Serving model status: {snippet!r}") from None
