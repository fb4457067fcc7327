"""How a pending install is named: the same words in `status`, `plan` and the log."""

from __future__ import annotations

from gcs_model_sync.layout import RemoteObject, fingerprint, group
from gcs_model_sync.local.state import PENDING
from gcs_model_sync.plan.actions import Install
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.report import install_state, published_as


def version() -> RemoteVersion:
    o = RemoteObject("p/m/1.zip", 1, 10)
    [(key, entries)] = group([o], "p/").items()
    return RemoteVersion(key[0], key[1], key[2], tuple(entries), fingerprint(key[2], entries))


def test_install_states_and_how_the_published_line_says_them() -> None:
    v = version()
    cases = [
        (Install(v, "new"), None, 0, "new", "new"),
        (Install(v, "new"), None, 5, "resuming", "resumed"),
        (Install(v, "missing locally"), PENDING, 0, "new", "new"),
        (Install(v, "missing locally"), PENDING, 5, "resuming", "resumed"),
        (Install(v, "missing locally"), "zip:1", 0, "reinstall", "reinstalled"),
        (Install(v, "changed"), "zip:0", 5, "replace", "replaced"),
        (Install(v, "replaces unmanaged"), None, 0, "replace", "replaced"),
    ]
    for install, fingerprint_, resume, state, said in cases:
        assert install_state(install, fingerprint_, resume) == state, install
        assert published_as(state) == said
