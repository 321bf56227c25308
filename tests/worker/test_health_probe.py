"""The health probe on real tiny networks built from specs, trained a few epochs on digits
(scikit-learn's bundled copy): each sign shows where the articles say it does."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from search_spaces.builder import SpecHyperModel
from search_spaces.hyperparameters import hyperparameters_from_values
from search_spaces.schema import JobSpec
from worker.training.health_probe import HealthProbe


def _digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x[:400] / 16.0).astype("float32"), y[:400]


def _train(model_section: dict[str, Any], epochs: int = 2, lr: float = 0.01) -> list[dict]:
    """The probe's records of a digits net built from ``model_section``, one per epoch (and
    one before training)."""
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "digits"},
            "model": model_section,
            "optimizer": {"name": "sgd", "learning_rate": lr},
            "training": {"epochs": epochs, "batch_size": 32, "seed": 1},
            "search": {"max_trials": 1, "seed": 1},
        }
    )
    x, y = _digits()
    info = spec.dataset.info
    hypermodel = SpecHyperModel(spec, info.input_shape, info.n_outputs, spec.task, None, x)
    keras.utils.set_random_seed(1)
    model = hypermodel.build(hyperparameters_from_values(spec, {}))
    probe = HealthProbe.of_rows(x, y, seed=0)
    probe.start(model)
    records = [probe.measure(model)]
    for _ in range(epochs):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        records.append(probe.measure(model))
    return records


def test_a_constant_initialization_makes_every_unit_of_a_layer_the_same() -> None:
    records = _train({"depth": 2, "units": 16, "activation": "tanh", "kernel_initializer": "ones"})
    for record in records:
        assert [layer["same"] for layer in record["layers"]] == [1.0, 1.0]
    # zeros + relu: every unit outputs 0 and stays dead (its slope is 0)
    zeros = _train({"depth": 2, "units": 16, "activation": "relu", "kernel_initializer": "zeros"})
    last = zeros[-1]["layers"]
    assert [layer["dead"] for layer in last] == [1.0, 1.0]
    assert [layer["g"] for layer in last] == [0.0, 0.0]


def test_a_healthy_net_has_distinct_live_units_and_varied_outputs() -> None:
    records = _train(
        {"depth": 2, "units": 32, "activation": "relu", "kernel_initializer": "he_normal"}
    )
    first, last = records[0], records[-1]
    assert first["layers"][0]["u"] == 0.0  # nothing trained yet
    for layer in last["layers"]:
        assert layer["act"] == "relu" and layer["same"] == 0.0
        assert layer["dead"] < 0.5 and layer["g"] > 0 and layer["u"] > 0
    assert last["out_std"] > 0.01
    assert last["loss"] < first["loss"]


def test_a_deep_sigmoid_stack_starves_its_lower_layers_of_gradient() -> None:
    records = _train(
        {"depth": 8, "units": 16, "activation": "sigmoid", "kernel_initializer": "glorot_uniform"},
        epochs=1,
    )
    gradients = [layer["g"] for layer in records[-1]["layers"]]
    assert gradients[0] < gradients[-1] / 10
    relu = _train(
        {"depth": 8, "units": 16, "activation": "relu", "kernel_initializer": "he_normal"},
        epochs=1,
    )
    relu_gradients = [layer["g"] for layer in relu[-1]["layers"]]
    assert relu_gradients[0] / relu_gradients[-1] > gradients[0] / gradients[-1] * 10


@pytest.mark.parametrize(("activation", "name"), [("leaky_relu", "leaky_relu"), ("selu", "selu")])
def test_the_probe_names_the_activation_the_spec_chose(activation: str, name: str) -> None:
    records = _train({"depth": 1, "units": 8, "activation": activation}, epochs=1)
    assert records[-1]["layers"][0]["act"] == name


@pytest.mark.parametrize(
    ("dataset", "loader"),
    [("breast_cancer", "load_breast_cancer"), ("diabetes", "load_diabetes")],
)
def test_the_probes_loss_is_the_models_own_on_one_output_tasks(dataset: str, loader: str) -> None:
    import sklearn.datasets

    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    # labels as the worker holds them: class indices, or float targets
    x, y = x[:300].astype("float32"), y[:300].astype("float32" if dataset == "diabetes" else int)
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": dataset},
            "model": {"depth": 2, "units": 8, "regularizer": "l2", "regularization_factor": 0.1},
            "training": {"epochs": 1},
            "search": {"max_trials": 1, "seed": 1},
        }
    )
    info = spec.dataset.info
    hypermodel = SpecHyperModel(spec, info.input_shape, info.n_outputs, spec.task, None, x)
    model = hypermodel.build(hyperparameters_from_values(spec, {}))
    probe = HealthProbe.of_rows(x, y, seed=0)
    probe.start(model)
    record = probe.measure(model)
    # the compiled loss on the probe rows, without the l2 penalty the model's loss adds
    predicted = model.predict(np.asarray(probe.x), verbose=0)
    targets = np.asarray(probe.y).reshape(predicted.shape)
    expected = float(np.mean(keras.losses.get(model.loss)(targets, predicted)))
    assert record["loss"] == pytest.approx(expected, rel=1e-3)
    penalized = model.evaluate(np.asarray(probe.x), targets, verbose=0, return_dict=True)["loss"]
    assert penalized > expected
    assert ("y_std" in record) == (dataset == "diabetes")
