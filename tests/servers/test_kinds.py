"""The registry of model-server kinds: a kind `--server-kind` accepts is one that is asked."""

from __future__ import annotations

from gcs_model_sync.servers.kinds import KINDS, Kind, kinds_help


def test_every_kind_has_its_registry_line_and_its_help() -> None:
    assert set(KINDS) == set(Kind)
    text = kinds_help()
    for kind, (_, about) in KINDS.items():
        assert f"{kind} ({about})" in text


def test_only_triton_in_explicit_mode_must_be_asked_to_load() -> None:
    assert {kind for kind, (asker, _) in KINDS.items() if asker.loads} == {Kind.TRITON}
