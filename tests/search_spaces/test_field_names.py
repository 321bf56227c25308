"""An unknown field's most likely meaning, wherever it sits in a spec."""

from __future__ import annotations

import pytest

from search_spaces.field_names import did_you_mean
from search_spaces.schema import JobSpec


@pytest.mark.parametrize(
    ("location", "meant"),
    [
        (["optimizer", "learnin_rate"], "learning_rate"),
        (["trainng"], "training"),
        (["training", "early_stopping", "patiance"], "patience"),
        (["model", "units", "int", "mn"], "min"),  # inside a parameter's range form
        (["model", "layers", 0, "layer", "activaton"], "activation"),
        (["model", "zzzz"], None),
        (["model", 3], None),
    ],
)
def test_the_closest_known_name_of_the_model_the_field_sits_in(
    location: list[str | int], meant: str | None
) -> None:
    assert did_you_mean(JobSpec, location) == meant
