"""Spec -> Keras Tuner hyperparameters: names, types, conditions, and the one-trial rule."""

from __future__ import annotations

from pathlib import Path

import keras_tuner
import pytest
from keras_tuner.engine import hyperparameters as hp_module

from search_spaces.hyperparameters import (
    build_hyperparameters,
    hyperparameters_from_values,
    register,
)
from search_spaces.params import Choice, Fixed, FloatRange, IntRange
from search_spaces.schema import JobSpec
from tests.search_spaces.helpers import make_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "search_spaces" / "examples"


def space(hp: keras_tuner.HyperParameters) -> dict[str, hp_module.HyperParameter]:
    return {h.name: h for h in hp.space}


def test_register_maps_param_types() -> None:
    hp = keras_tuner.HyperParameters()
    register(hp, "a", Fixed[int](value=3))
    register(hp, "b", Choice[str](type="choice", values=["x", "y"]))
    register(hp, "c", IntRange[int](type="int", min=8, max=64, step=8))
    register(hp, "d", FloatRange[float](type="float", min=1e-4, max=1e-1, sampling="log"))
    register(hp, "e", IntRange[int](type="int", min=4, max=4))
    register(hp, "f", IntRange[int](type="int", min=8, max=32, step=8, sampling="log"))
    register(hp, "g", Choice[bool](type="choice", values=[False, True]))
    s = space(hp)
    assert isinstance(s["a"], hp_module.Fixed) and s["a"].value == 3
    assert isinstance(s["b"], hp_module.Choice) and s["b"].values == ["x", "y"]
    assert isinstance(s["c"], hp_module.Int)
    assert (s["c"].min_value, s["c"].max_value, s["c"].step) == (8, 64, 8)
    assert isinstance(s["d"], hp_module.Float) and s["d"].sampling == "log"
    assert isinstance(s["e"], hp_module.Fixed) and s["e"].value == 4
    assert isinstance(s["f"], hp_module.Choice) and s["f"].values == [8, 16, 24, 32]
    assert isinstance(s["g"], hp_module.Boolean) and hp.get("g") is False


def test_register_conditional() -> None:
    hp = keras_tuner.HyperParameters()
    register(hp, "opt", Choice[str](type="choice", values=["sgd", "momentum"]))
    register(hp, "m", Fixed[float](value=0.9), "opt", ["momentum"])
    assert not hp.is_active("m")
    hp.values["opt"] = "momentum"
    assert hp.is_active("m")


def test_default_space_names() -> None:
    hp = build_hyperparameters(make_spec())
    assert set(hp.values) == {
        "input_standardize",
        "input_batch_norm",
        "depth",
        "units",
        "activation",
        "kernel_initializer",
        "batch_norm",
        "dropout",
        "regularizer",
        "max_norm",
        "optimizer",
        "learning_rate",
        "beta_1",
        "beta_2",
        "clipping",
        "schedule",
        "epochs",
        "batch_size",
    }
    assert all(isinstance(h, hp_module.Fixed) for h in hp.space)


def test_children_of_fixed_inactive_parents_are_not_declared() -> None:
    names = set(space(build_hyperparameters(make_spec(optimizer={"name": "sgd"}))))
    for child in ("momentum", "rho", "beta_1", "beta_2", "weight_decay", "clip_threshold"):
        assert child not in names
    for child in ("leaky_alpha", "rrelu_lower", "vs_scale", "regularization_factor"):
        assert child not in names
    for child in ("dropout_kind", "decay_epochs", "power", "plateau_factor", "loss"):
        assert child not in names


def test_children_of_fixed_active_parents_are_unconditional() -> None:
    spec = make_spec(
        model={"activation": "leaky_relu", "kernel_initializer": "variance_scaling"},
        optimizer={"name": "nesterov", "clipping": "clipnorm"},
        schedule={"kind": "power"},
    )
    s = space(build_hyperparameters(spec))
    for name in ("leaky_alpha", "vs_scale", "vs_mode", "vs_distribution", "momentum"):
        assert s[name].conditions == []
    for name in ("clip_threshold", "decay_epochs", "power"):
        assert s[name].conditions == []


def test_momentum_only_active_for_sgd_momentum() -> None:
    spec = make_spec(
        optimizer={"name": {"type": "choice", "values": ["sgd", "momentum", "nesterov", "adam"]}}
    )
    hp = build_hyperparameters(spec)
    for name, momentum, betas in [
        ("sgd", False, False),
        ("momentum", True, False),
        ("nesterov", True, False),
        ("adam", False, True),
    ]:
        hp.values["optimizer"] = name
        assert hp.is_active("momentum") is momentum
        assert hp.is_active("beta_1") is betas
        assert hp.is_active("beta_2") is betas
    assert "rho" not in space(hp) and "weight_decay" not in space(hp)


@pytest.mark.parametrize(
    ("parent", "values", "child", "active", "inactive"),
    [
        ("regularizer", ["none", "l1", "l2"], "regularization_factor", "l2", "none"),
        ("clipping", ["none", "clipvalue"], "clip_threshold", "clipvalue", "none"),
        ("kind", ["constant", "power", "exponential"], "decay_epochs", "exponential", "constant"),
        ("kind", ["constant", "power"], "power", "power", "constant"),
        ("kind", ["constant", "plateau"], "plateau_patience", "plateau", "constant"),
        ("activation", ["relu", "leaky_relu"], "leaky_alpha", "leaky_relu", "relu"),
        ("activation", ["relu", "rrelu"], "rrelu_upper", "rrelu", "relu"),
        (
            "kernel_initializer",
            ["he_normal", "variance_scaling"],
            "vs_mode",
            "variance_scaling",
            "he_normal",
        ),
    ],
)
def test_categorical_conditions(
    parent: str, values: list[str], child: str, active: str, inactive: str
) -> None:
    section = {"regularizer": "model", "activation": "model", "kernel_initializer": "model"}.get(
        parent, "optimizer" if parent == "clipping" else "schedule"
    )
    spec = make_spec(**{section: {parent: {"type": "choice", "values": values}}})
    hp = build_hyperparameters(spec)
    hp_parent = {"kind": "schedule"}.get(parent, parent)
    hp.values[hp_parent] = active
    assert hp.is_active(child)
    hp.values[hp_parent] = inactive
    assert not hp.is_active(child)


def test_per_layer_units_follow_depth() -> None:
    spec = make_spec(
        model={
            "depth": {"type": "int", "min": 2, "max": 4},
            "units": {"type": "int", "min": 8, "max": 16, "step": 8},
            "per_layer": ["units", "activation"],
            "activation": {"type": "choice", "values": ["relu", "leaky_relu"]},
        }
    )
    hp = build_hyperparameters(spec)
    s = space(hp)
    assert {f"units_{i}" for i in range(4)} <= set(s)
    assert "units" not in s and "units_4" not in s
    assert s["units_0"].conditions == [] and s["units_1"].conditions == []
    hp.values["depth"] = 3
    assert hp.is_active("units_2") and not hp.is_active("units_3")
    hp.values["depth"] = 2
    assert not hp.is_active("units_2") and not hp.is_active("activation_2")
    # per-layer activation makes leaky_alpha per layer, nested under depth
    hp.values["depth"] = 4
    hp.values["activation_3"] = "leaky_relu"
    assert hp.is_active("leaky_alpha_3")
    hp.values["depth"] = 3
    assert not hp.is_active("leaky_alpha_3")


def test_explicit_layers_fix_depth_and_units() -> None:
    data = {"dataset": {"name": "iris"}, "model": {"layers": [16, 8, 4], "per_layer": ["dropout"]}}
    hp = build_hyperparameters(JobSpec.model_validate(data))
    s = space(hp)
    assert isinstance(s["depth"], hp_module.Fixed) and s["depth"].value == 3
    assert [hp.get(f"units_{i}") for i in range(3)] == [16, 8, 4]
    assert all(s[f"dropout_{i}"].conditions == [] for i in range(3))


def test_regression_declares_loss() -> None:
    hp = build_hyperparameters(
        make_spec("regression", training={"loss": {"type": "choice", "values": ["mse", "huber"]}})
    )
    assert space(hp)["loss"].values == ["mse", "huber"]


def test_hyperparameters_from_values_fills_and_drops() -> None:
    spec = make_spec(
        model={"depth": {"type": "int", "min": 1, "max": 3}, "per_layer": ["units"]},
        optimizer={"name": {"type": "choice", "values": ["adam", "momentum"]}},
    )
    hp = hyperparameters_from_values(spec, {"optimizer": "momentum", "depth": 2, "beta_1": 0.5})
    assert hp.get("momentum") == 0.9
    assert "beta_1" not in hp.values
    assert "units_1" in hp.values and "units_2" not in hp.values
    with pytest.raises(KeyError):
        hyperparameters_from_values(spec, {"nope": 1})


def _oracle(hp: keras_tuner.HyperParameters, tmp_path: Path) -> keras_tuner.Oracle:
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_trials=5,
        hyperparameters=hp,
        seed=0,
    )
    oracle._set_project_dir(str(tmp_path), "p")
    return oracle


def _run_until_stopped(oracle: keras_tuner.Oracle) -> int:
    trials = 0
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == keras_tuner.engine.trial.TrialStatus.STOPPED:
            return trials
        trials += 1
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        oracle.end_trial(trial)


def test_all_fixed_space_yields_one_trial(tmp_path: Path) -> None:
    spec = JobSpec.model_validate_json((EXAMPLES / "fashion_mnist_300_100_50.json").read_text())
    assert spec.is_single_configuration
    oracle = _oracle(build_hyperparameters(spec), tmp_path)
    first = oracle.create_trial("tuner0")
    assert first.status == keras_tuner.engine.trial.TrialStatus.RUNNING
    oracle.update_trial(first.trial_id, {"val_accuracy": 0.5})
    oracle.end_trial(first)
    second = oracle.create_trial("tuner0")
    assert second.status == keras_tuner.engine.trial.TrialStatus.STOPPED


def test_two_value_space_yields_two_trials(tmp_path: Path) -> None:
    spec = make_spec(model={"activation": {"type": "choice", "values": ["relu", "elu"]}})
    assert _run_until_stopped(_oracle(build_hyperparameters(spec), tmp_path)) == 2
