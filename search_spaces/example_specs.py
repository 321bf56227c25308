"""The example specs shipped in ``search_spaces/examples``: the demo's job, and the examples of
the API's documentation."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: the demo's spec: a few tiny digits networks, a job of seconds.
QUICK_EXAMPLE = "digits_quick.json"


def example_names() -> list[str]:
    """The shipped examples' file names."""
    folder = resources.files("search_spaces").joinpath("examples")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))


def example_spec(name: str = QUICK_EXAMPLE) -> dict[str, Any]:
    """One shipped example spec."""
    text = resources.files("search_spaces").joinpath("examples", name).read_text()
    return json.loads(text)
