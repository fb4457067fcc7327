"""The KServe Open Inference Protocol v2, REST, "Model Ready"
(https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol,
https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md):
Triton in poll mode, OpenVINO Model Server, KServe's runtimes.

`GET /v2/models/<name>/versions/<v>/ready`; the status code is the answer, 200 ready and
4xx not ready (KServe's Python runtimes refuse a version in the path). The server finds new
versions on disk itself: nothing is loaded.
"""

from __future__ import annotations

from urllib.parse import quote

from gcs_model_sync.servers.rest import Rest


class V2Ready:
    loads = False

    def served(self, rest: Rest, name: str, wanted: set[int]) -> int | None:
        """Each of `wanted` asked newest first; the first ready one."""
        quoted = quote(name, safe="")
        for version in sorted(wanted, reverse=True):
            status, body = rest.request(
                name, "GET", f"/v2/models/{quoted}/versions/{version}/ready"
            )
            if status == 200:
                return version
            rest.not_ready(name, status, body)
        return None

    def load(self, rest: Rest, name: str, timeout: float) -> None:
        """Nothing to ask: the server polls its model repository."""
