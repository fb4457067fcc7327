"""The option table: one row per option and command, the defaults Config takes from it."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from gcs_model_sync import options, units
from gcs_model_sync.config import Config
from gcs_model_sync.options import OPTIONS, Unit, default
from gcs_model_sync.servers.server import Kind


@pytest.mark.parametrize("command", options.ALL)
def test_each_command_takes_each_option_once(command: str) -> None:
    names = Counter(o.name for o in options.of(command))
    assert [n for n, count in names.items() if count > 1] == []
    assert [o.name for o in options.of(command)][:2] == ["source", "dest"]


def test_every_default_of_a_duration_or_size_parses() -> None:
    for o in OPTIONS:
        if o.unit is Unit.DURATION:
            assert default(o.name) == units.parse_duration(o.default)
        elif o.unit is Unit.SIZE and o.default is not None:
            assert default(o.name) == units.parse_size(o.default)


def test_config_defaults_are_the_options_defaults() -> None:
    fields = {f.name: f for f in dataclasses.fields(Config)}
    # --output's default (none) means "as --log-format": build_config settles it
    shared = [o.name for o in OPTIONS if o.name in fields and o.default is not options.REQUIRED]
    shared.remove("output")
    assert len(shared) > 30
    for name in shared:
        assert fields[name].default == default(name), name


def test_server_kind_default_and_help_come_from_the_servers_kinds() -> None:
    (row,) = [o for o in OPTIONS if o.name == "server_kind"]
    assert row.default in set(Kind)
    for kind in Kind:
        assert kind.value in row.help


def test_flag_and_variable_follow_the_name() -> None:
    (row,) = [o for o in OPTIONS if o.name == "max_version_size"]
    assert (row.flag, row.envvar) == ("--max-version-size", "GCS_MODEL_SYNC_MAX_VERSION_SIZE")
