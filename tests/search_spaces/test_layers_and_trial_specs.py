"""Layers a spec fixes one by one, and trials written back as specs (without TensorFlow)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from search_spaces.schema import JobSpec
from search_spaces.trial_spec import trial_spec


def _spec(model: dict[str, Any], **search: Any) -> JobSpec:
    return JobSpec.model_validate({"dataset": {"name": "digits"}, "model": model, "search": search})


def test_a_layer_fixes_its_own_values_and_makes_them_per_layer() -> None:
    spec = _spec(
        {
            "layers": [32, {"units": 16, "activation": "leaky_relu", "leaky_alpha": 0.3}],
            "activation": {"type": "choice", "values": ["relu", "tanh"]},
        }
    )
    assert spec.model.is_per_layer("activation") and spec.model.is_per_layer("leaky_alpha")
    assert not spec.model.is_per_layer("dropout")
    dumped = spec.model_dump(mode="json")["model"]["layers"]
    assert dumped == [32, {"units": 16, "activation": "leaky_relu", "leaky_alpha": 0.3}]
    assert spec.model.max_parameter_count(64, 10) == 65 * 32 + 33 * 16 + 17 * 10


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"units": 8, "leaky_alpha": 0.2}, "leaky_alpha"),
        ({"units": 8, "activation": "relu", "rrelu_lower": 0.1}, "rrelu_lower"),
        ({"units": 8, "variance_scaling": {"scale": 2.0}}, "variance_scaling"),
        ({"units": 0}, "units"),
        ({"units": 8, "dropout": 0.95}, "dropout"),
    ],
)
def test_a_layer_value_without_its_parent_or_out_of_bounds_is_refused(
    layer: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _spec({"layers": [layer]})
    assert field in str(refused.value)


def test_a_hyperband_trial_or_an_unseeded_one_is_not_reproduced_exactly() -> None:
    spec = _spec({"depth": 1, "units": 8}, algorithm="hyperband")
    values = {"depth": 1, "units": 8, "tuner/epochs": 4, "tuner/initial_epoch": 2}
    written = trial_spec(spec, values, 5)
    assert not written.exact and "Hyperband" in written.notes[0]
    assert written.spec["training"]["epochs"] == 4 and written.spec["training"]["seed"] is None
    assert written.spec["search"]["algorithm"] == "random"
    assert JobSpec.model_validate(written.spec).model.layer(0).units == 8  # type: ignore[union-attr]


def test_a_seeded_trial_spec_fixes_every_searched_value() -> None:
    spec = _spec(
        {
            "depth": {"type": "int", "min": 1, "max": 2},
            "kernel_initializer": {"type": "choice", "values": ["auto", "variance_scaling"]},
            "variance_scaling": {"scale": {"type": "float", "min": 0.5, "max": 2.0}},
            "activation": "selu",
        },
        seed=9,
    )
    values = {"depth": 2, "units": 64, "kernel_initializer": "auto", "activation": "selu"}
    written = trial_spec(spec, values, 1)
    assert written.exact and written.spec["training"]["seed"] == 109
    layers = written.spec["model"]["layers"]
    assert [layer["kernel_initializer"] for layer in layers] == ["lecun_normal"] * 2
    model = JobSpec.model_validate(written.spec).model
    assert model.variance_scaling.scale.candidates() == [0.5]  # unused: fixed, not searched
