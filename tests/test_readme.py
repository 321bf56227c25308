"""The README is a contract: its example specs validate, and CI runs its test command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search_spaces.schema import JobSpec

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("block", _blocks("json"))
def test_readme_spec_examples_validate(block: str) -> None:
    JobSpec.model_validate(json.loads(block))


def test_readme_examples_are_the_shipped_files() -> None:
    shipped = {
        json.dumps(json.loads(p.read_text()), sort_keys=True)
        for p in (ROOT / "search_spaces" / "examples").glob("*.json")
    }
    for block in _blocks("json"):
        assert json.dumps(json.loads(block), sort_keys=True) in shipped


def test_readme_opens_with_run_and_test_commands_and_ci_runs_the_second() -> None:
    run, test = (block.strip() for block in _blocks("bash")[:2])
    assert run.endswith("hpsearch demo")
    assert test.endswith("pytest")
    assert test in (ROOT / ".ci" / "run").read_text()


def test_readme_documents_every_setting() -> None:
    from db.settings import Settings

    for name in Settings.model_fields:
        assert f"`HPSEARCH_{name.upper()}`" in README, (
            f"HPSEARCH_{name.upper()} is not in the README"
        )


def test_readme_documents_every_limit() -> None:
    from search_spaces.limits import LIMITS

    limits_section = README.split("## Limits", 1)[1].split("\n## ", 1)[0]
    for value in LIMITS.values():
        shown = {f"{value}", f"{value:,}"}
        if value % 86400 == 0:
            shown.add(f"{value // 86400} days")
        assert any(s in limits_section for s in shown), value
