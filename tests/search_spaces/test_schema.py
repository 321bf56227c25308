"""Spec validation: good specs, limits, unknown fields, param shapes and cross-field rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from search_spaces import limits
from search_spaces.params import Choice, Fixed, FloatRange, IntRange, fixed_value
from search_spaces.schema import JobSpec
from tests.search_spaces.helpers import make_spec, merge, spec_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "search_spaces" / "examples"


def errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(data)
    return info.value.errors()


def spec_rule(data: dict[str, Any]) -> dict[str, Any]:
    errs = [e for e in errors(data) if e["type"] == "spec_rule"]
    assert len(errs) == 1, errors(data)
    return errs[0]["ctx"]


def test_minimal_spec_defaults() -> None:
    spec = JobSpec.model_validate({"dataset": {"name": "digits"}})
    assert spec.task == "multiclass"
    assert spec.objective == "val_accuracy"
    assert spec.direction == "max"
    assert isinstance(spec.model.activation, Fixed) and spec.model.activation.value == "relu"
    assert spec.is_single_configuration


def test_param_shapes() -> None:
    spec = make_spec(
        model={
            "units": {"type": "int", "min": 8, "max": 64, "step": 8},
            "activation": {"type": "choice", "values": ["relu", "selu"]},
            "dropout": {"type": "float", "min": 0.0, "max": 0.5},
            "depth": {"type": "fixed", "value": 3},
        },
        optimizer={"learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"}},
    )
    assert isinstance(spec.model.units, IntRange)
    assert isinstance(spec.model.activation, Choice)
    assert isinstance(spec.model.dropout, FloatRange)
    assert spec.model.depth.candidates() == [3]
    assert spec.optimizer.learning_rate.sampling == "log"
    assert not spec.is_single_configuration


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_examples_validate(path: Path) -> None:
    JobSpec.model_validate_json(path.read_text())


def test_fashion_example_is_the_reference_network() -> None:
    spec = JobSpec.model_validate_json((EXAMPLES / "fashion_mnist_300_100_50.json").read_text())
    assert spec.model.layers == [300, 100, 50, 50, 50]
    assert spec.optimizer.name.candidates() == ["sgd"]
    assert spec.optimizer.learning_rate.candidates() == [1e-3]
    assert spec.max_epochs == 20
    assert spec.dataset.validation_split == 0.1
    assert spec.is_single_configuration


def test_pima_example_is_the_combined_search() -> None:
    spec = JobSpec.model_validate_json((EXAMPLES / "pima_combining_all.json").read_text())
    assert spec.task == "binary"
    assert spec.model.depth.candidates() == list(range(1, 11))
    assert spec.model.units.candidates() == list(range(8, 129, 8))
    assert set(spec.model.per_layer) == {"units", "activation", "dropout"}
    assert spec.optimizer.name.candidates() == ["rmsprop", "adam", "sgd", "nadam", "adadelta"]
    assert spec.search.max_trials == 30
    assert spec.max_epochs == 5


@pytest.mark.parametrize(
    ("override", "loc"),
    [
        ({"search": {"max_trials": limits.MAX_TRIALS + 1}}, ("search", "max_trials")),
        (
            {"search": {"executions_per_trial": limits.MAX_EXECUTIONS_PER_TRIAL + 1}},
            ("search", "executions_per_trial"),
        ),
        ({"model": {"units": limits.MAX_UNITS + 1}}, ("model", "units")),
        ({"model": {"depth": limits.MAX_LAYERS + 1}}, ("model", "depth")),
        ({"training": {"epochs": limits.MAX_EPOCHS + 1}}, ("training", "epochs")),
        ({"training": {"batch_size": limits.MAX_BATCH_SIZE + 1}}, ("training", "batch_size")),
        ({"training": {"epochs": 0}}, ("training", "epochs")),
        ({"model": {"input": {"rescale": 0}}}, ("model", "input", "rescale")),
        ({"model": {"input": {"rescale": 1e7}}}, ("model", "input", "rescale")),
        ({"dataset": {"name": "digits", "split": "random"}}, ("dataset", "split")),
    ],
)
def test_limits(override: dict[str, Any], loc: tuple[str, ...]) -> None:
    errs = errors(spec_dict(**override))
    assert any(e["loc"][: len(loc)] == loc for e in errs), errs


def test_limit_inside_a_range() -> None:
    errs = errors(
        spec_dict(model={"units": {"type": "int", "min": 1, "max": limits.MAX_UNITS + 1}})
    )
    assert any(e["loc"][:2] == ("model", "units") and "max" in e["loc"] for e in errs), errs


def test_too_many_layers_in_list() -> None:
    data = spec_dict()
    data["model"] = {"layers": [8] * (limits.MAX_LAYERS + 1)}
    assert any(e["loc"][:2] == ("model", "layers") for e in errors(data))


def test_too_many_choices() -> None:
    values = list(range(1, limits.MAX_CHOICES + 2))
    data = spec_dict(model={"units": {"type": "choice", "values": values}})
    assert any(e["loc"][:2] == ("model", "units") for e in errors(data))


@pytest.mark.parametrize(
    "override",
    [
        {"colour": "red"},
        {"model": {"colour": "red"}},
        {"model": {"input": {"colour": "red"}}},
        {"model": {"variance_scaling": {"colour": "red"}}},
        {"model": {"units": {"type": "int", "min": 8, "max": 16, "colour": "red"}}},
        {"training": {"early_stopping": {"colour": "red"}}},
        {"dataset": {"colour": "red"}},
    ],
)
def test_unknown_fields_rejected(override: dict[str, Any]) -> None:
    errs = errors(merge(spec_dict(), override))
    assert any(e["type"] == "extra_forbidden" and e["loc"][-1] == "colour" for e in errs), errs


@pytest.mark.parametrize(
    "param",
    [
        {"type": "int", "min": 16, "max": 8},
        {"type": "int", "min": 0, "max": 8, "sampling": "log"},
        {"type": "choice", "values": []},
        {"type": "choice", "values": [8, 8]},
        {"type": "grid", "values": [8]},
    ],
)
def test_bad_int_params(param: dict[str, Any]) -> None:
    errs = errors(spec_dict(model={"units": param}))
    assert all(e["loc"][:2] == ("model", "units") for e in errs), errs


@pytest.mark.parametrize(
    "param",
    [
        {"type": "float", "min": 0.1, "max": 0.01},
        {"type": "float", "min": 0.0, "max": 0.1, "sampling": "log"},
        {"type": "float", "min": -1.0, "max": 0.1},
        {"type": "int", "min": 1, "max": 2},
    ],
)
def test_bad_float_params(param: dict[str, Any]) -> None:
    errs = errors(spec_dict(optimizer={"learning_rate": param}))
    assert all(e["loc"][:2] == ("optimizer", "learning_rate") for e in errs), errs


def test_wrong_category_value() -> None:
    errs = errors(spec_dict(model={"activation": {"type": "choice", "values": ["relu", "mish"]}}))
    assert errs and all(e["loc"][:2] == ("model", "activation") for e in errs)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"dataset": {"name": "no_such_data"}}, "dataset.name"),
        ({"model": {"layers": [8, 8], "depth": 2}}, "model.layers"),
        ({"model": {"per_layer": ["units", "units"]}}, "model.per_layer"),
        ({"search": {"objective": "val_auc"}}, "search.objective"),
        (
            {"training": {"early_stopping": {"monitor": "val_mae"}}},
            "training.early_stopping.monitor",
        ),
        ({"model": {"depth": 20, "units": 4096}}, "model"),
        (
            {
                "optimizer": {"learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2}},
                "search": {"algorithm": "grid"},
            },
            "search.algorithm",
        ),
        ({"schedule": {"kind": "piecewise"}}, "schedule.boundaries"),
        ({"training": {"loss": "huber"}}, "training.loss"),  # a multiclass task
        ({"training": {"loss": {"type": "choice", "values": ["mse", "huber"]}}}, "training.loss"),
        (
            {"schedule": {"kind": "piecewise", "boundaries": [5, 2], "multipliers": [1, 0.5, 0.1]}},
            "schedule.boundaries",
        ),
        (
            {"schedule": {"kind": "piecewise", "boundaries": [2, 5], "multipliers": [1, 0.5]}},
            "schedule.multipliers",
        ),
    ],
)
def test_cross_field_rules_name_their_field(override: dict[str, Any], field: str) -> None:
    assert spec_rule(merge(spec_dict(), override))["field"] == field


def test_explicit_layers_with_per_layer_units() -> None:
    data = spec_dict()
    data["model"] = {"layers": [8, 8], "per_layer": ["units"]}
    assert spec_rule(data)["field"] == "model.per_layer"


def test_parameter_limit_names_the_limit() -> None:
    ctx = spec_rule(spec_dict(model={"depth": 20, "units": 4096}))
    assert ctx["limit"] == limits.MAX_PARAMETERS


def test_flatten_false_on_images_rejected() -> None:
    data = spec_dict(dataset={"name": "mnist"}, model={"input": {"flatten": False}})
    assert spec_rule(data)["field"] == "model.input.flatten"


def test_regression_objectives() -> None:
    spec = make_spec("regression", search={"objective": "val_mae"})
    assert spec.direction == "min"
    assert make_spec("regression").objective == "val_loss"


def test_spec_json_roundtrip() -> None:
    spec = make_spec(model={"activation": {"type": "choice", "values": ["relu", "elu"]}})
    again = JobSpec.model_validate(json.loads(spec.model_dump_json()))
    assert again == spec


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_a_dumped_spec_validates_again(path: Path) -> None:
    """The API stores ``model_dump(mode="json")`` and the workers validate it again."""
    spec = JobSpec.model_validate(json.loads(path.read_text()))
    again = JobSpec.model_validate(spec.model_dump(mode="json"))
    assert again.model_dump(mode="json") == spec.model_dump(mode="json")


def test_a_parameter_schema_is_any_of_its_bare_value_and_named_forms() -> None:
    schema = JobSpec.model_json_schema()
    units = schema["$defs"]["ModelSpec"]["properties"]["units"]
    assert units["anyOf"] == [
        {"$ref": f"#/$defs/{name}"} for name in ("Units", "UnitsFixed", "UnitsChoice", "UnitsRange")
    ]
    assert units["default"] == 64  # a bare value: the default matches the schema
    assert schema["$defs"]["Activation"]["enum"][0] == "relu"
    assert schema["$defs"]["UnitsChoice"]["properties"]["values"]["uniqueItems"] is True
    assert all("[" not in name and "_" not in name for name in schema["$defs"]), schema["$defs"]


@pytest.mark.parametrize(
    "units", [32, {"value": 32}, {"type": "fixed", "value": 32}, {"type": "choice", "values": [32]}]
)
def test_every_form_the_schema_gives_a_fixed_parameter_is_accepted(units: Any) -> None:
    spec = JobSpec.model_validate({"dataset": {"name": "digits"}, "model": {"units": units}})
    assert fixed_value(spec.model.units) == 32
