"""The README is the contract users read: keep it in step with the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def options(command: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "gcs_model_sync", command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": ""},
    ).stdout
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]+)", out, re.M)) - {"--help"}


@pytest.mark.parametrize("command", ["once", "plan", "status", "run"])
def test_every_option_is_documented_with_its_variable(command: str) -> None:
    found = options(command)
    assert "--source" in found
    for opt in found:
        assert f"`{opt}`" in README, f"{opt} missing from README"
        env = "GCS_MODEL_SYNC_" + opt[2:].upper().replace("-", "_")
        assert env in README, f"{env} missing from README"


def test_readme_test_command_is_what_ci_runs() -> None:
    assert "make test    #" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_relative_link_resolves() -> None:
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (ROOT / target).exists(), target


def test_every_test_reliability_md_names_exists() -> None:
    """docs/reliability.md maps each guarantee to its test: a renamed test must not leave a
    guarantee pointing at nothing (`file.py::name`, and `::name` for the file before it)."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    refs = re.findall(r"`((?:[\w/]+\.py)?)::(\w+)`", text)
    assert len(refs) > 50
    missing, current = [], ""
    for path, name in refs:
        current = path or current
        if f"def {name}(" not in (ROOT / "tests" / current).read_text():
            missing.append(f"{current}::{name}")
    assert missing == []
