"""Triton with `--model-control-mode=explicit`, "Model Repository Extension"
(https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md).

Nothing is loaded or reloaded until `POST /v2/repository/models/<name>/load`, which answers
200 once the model is loaded and an HTTP error status (typically 400) with
`{"error": "..."}` when it could not be. What it serves is asked as any v2 server is.
"""

from __future__ import annotations

from urllib.parse import quote

from gcs_model_sync.servers.rest import Rest, error_text
from gcs_model_sync.servers.v2 import V2Ready


class TritonExplicit(V2Ready):
    loads = True

    def load(self, rest: Rest, name: str, timeout: float) -> None:
        """Load the model's newest version. Triton answers only once the model is loaded or
        has failed to, so a big model wants a `timeout` longer than the per-request one."""
        path = f"/v2/repository/models/{quote(name, safe='')}/load"
        status, body = rest.request(name, "POST", path, b"{}", timeout)
        if status != 200:
            raise rest.error(name, f"load failed: {error_text(body) or f'HTTP {status}'}")
