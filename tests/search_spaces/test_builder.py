"""Spec + hyperparameters -> compiled Keras model, inspected technique by technique."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from search_spaces import keras_objects
from search_spaces.builder import SpecHyperModel
from search_spaces.datasets import TASK_METRICS
from search_spaces.hyperparameters import hyperparameters_from_values
from search_spaces.layer_spec import auto_initializer
from search_spaces.schema import JobSpec
from tests.search_spaces.helpers import make_data, make_spec


def build(
    spec: JobSpec, values: dict[str, Any] | None = None, steps_per_epoch: int | None = None
) -> tuple[SpecHyperModel, Any, keras.Model]:
    x, _ = make_data(spec)
    info = spec.dataset.info
    hypermodel = SpecHyperModel(
        spec, info.input_shape, info.n_outputs, spec.task, steps_per_epoch, x
    )
    hp = hyperparameters_from_values(spec, values or {})
    return hypermodel, hp, hypermodel.build(hp)


def hidden_layers(model: keras.Model) -> list[keras.layers.Layer]:
    skip = (keras.layers.InputLayer, keras.layers.Normalization, keras.layers.Flatten)
    return [layer for layer in model.layers if not isinstance(layer, skip)]


def kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in hidden_layers(model)]


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        ("relu", keras.initializers.HeNormal),
        ("leaky_relu", keras.initializers.HeNormal),
        ("prelu", keras.initializers.HeNormal),
        ("rrelu", keras.initializers.HeNormal),
        ("elu", keras.initializers.HeNormal),
        ("gelu", keras.initializers.HeNormal),
        ("swish", keras.initializers.HeNormal),
        ("selu", keras.initializers.LecunNormal),
        ("tanh", keras.initializers.GlorotUniform),
        ("sigmoid", keras.initializers.GlorotUniform),
        ("linear", keras.initializers.GlorotUniform),
    ],
)
def test_auto_initializer_per_activation(activation: str, expected: type) -> None:
    spec = make_spec(model={"activation": activation, "kernel_initializer": "auto"})
    _, _, model = build(spec)
    assert type(model.get_layer("dense_0").kernel_initializer) is expected
    assert (
        auto_initializer(activation)
        == expected.__name__.replace("Normal", "_normal").replace("Uniform", "_uniform").lower()
    )


def test_per_layer_initializers_and_seeds() -> None:
    spec = make_spec(
        model={
            "per_layer": ["kernel_initializer"],
            "kernel_initializer": {
                "type": "choice",
                "values": ["he_uniform", "lecun_normal", "zeros"],
            },
            "depth": 3,
        },
        search={"seed": 7},
    )
    values = {
        "kernel_initializer_0": "he_uniform",
        "kernel_initializer_1": "lecun_normal",
        "kernel_initializer_2": "zeros",
    }
    _, _, model = build(spec, values)
    inits = [model.get_layer(f"dense_{i}").kernel_initializer for i in range(3)]
    assert [type(i) for i in inits] == [
        keras.initializers.HeUniform,
        keras.initializers.LecunNormal,
        keras.initializers.Zeros,
    ]
    assert inits[0].seed is not None and inits[0].seed != inits[1].seed
    assert not np.any(model.get_layer("dense_2").get_weights()[0])
    # the same seed gives the same initial weights
    _, _, again = build(spec, values)
    np.testing.assert_array_equal(
        model.get_layer("dense_0").get_weights()[0], again.get_layer("dense_0").get_weights()[0]
    )


def test_unseeded_initializers() -> None:
    spec = make_spec(model={"kernel_initializer": "he_normal"})
    weights = [build(spec)[2].get_layer("dense_0").get_weights()[0] for _ in range(2)]
    assert not np.array_equal(*weights)


def test_variance_scaling_arguments() -> None:
    spec = make_spec(
        model={
            "kernel_initializer": "variance_scaling",
            "variance_scaling": {
                "scale": 2.0,
                "mode": {"type": "choice", "values": ["fan_in", "fan_avg"]},
                "distribution": "uniform",
            },
        }
    )
    _, _, model = build(spec, {"vs_mode": "fan_avg"})
    init = model.get_layer("dense_1").kernel_initializer
    assert isinstance(init, keras.initializers.VarianceScaling)
    assert (init.scale, init.mode, init.distribution) == (2.0, "fan_avg", "uniform")


def test_batch_norm_before_activation() -> None:
    spec = make_spec(model={"batch_norm": "before", "activation": "elu", "depth": 1})
    _, _, model = build(spec)
    assert kinds(model) == ["Dense", "BatchNormalization", "Activation", "Dense"]
    dense = model.get_layer("dense_0")
    assert dense.use_bias is False and dense.activation is keras.activations.linear
    assert model.get_layer("act_0").activation is keras.activations.elu


def test_batch_norm_after_activation() -> None:
    spec = make_spec(model={"batch_norm": "after", "depth": 1})
    _, _, model = build(spec)
    assert kinds(model) == ["Dense", "BatchNormalization", "Dense"]
    dense = model.get_layer("dense_0")
    assert dense.use_bias is True and dense.activation is keras.activations.relu


def test_batch_norm_before_with_layer_activation() -> None:
    spec = make_spec(model={"batch_norm": "before", "activation": "leaky_relu", "depth": 1})
    _, _, model = build(spec)
    assert kinds(model) == ["Dense", "BatchNormalization", "LeakyReLU", "Dense"]


def test_input_batch_norm_and_per_layer_batch_norm() -> None:
    spec = make_spec(
        model={
            "input": {"batch_norm": True, "standardize": False},
            "per_layer": ["batch_norm"],
            "batch_norm": {"type": "choice", "values": ["none", "after"]},
        }
    )
    _, _, model = build(spec, {"batch_norm_0": "none", "batch_norm_1": "after"})
    assert kinds(model) == ["BatchNormalization", "Dense", "Dense", "BatchNormalization", "Dense"]
    assert model.get_layer("input_batch_norm")
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)


def test_batch_norm_before_dense() -> None:
    spec = make_spec(
        model={"batch_norm": "before_dense", "depth": 2, "input": {"standardize": False}}
    )
    _, _, model = build(spec)
    # The article's layout: BN on each hidden Dense's input, none between the last and the output.
    assert kinds(model) == ["BatchNormalization", "Dense", "BatchNormalization", "Dense", "Dense"]
    assert model.get_layer("dense_0").use_bias is True
    assert model.get_layer("dense_0").activation is keras.activations.relu


def test_rescale_comes_before_standardization() -> None:
    spec = make_spec(model={"input": {"rescale": 0.5}})
    x, _ = make_data(spec)
    info = spec.dataset.info
    hypermodel = SpecHyperModel(spec, info.input_shape, info.n_outputs, spec.task, 4, x)
    model = hypermodel.build(hyperparameters_from_values(spec, {}))
    names = [layer.name for layer in model.layers]
    assert names.index("input_rescaling") < names.index("input_normalization")
    assert model.get_layer("input_rescaling").scale == 0.5
    # The Normalization layer's moments are those of the rescaled rows.
    scaled = keras.ops.convert_to_numpy(model.get_layer("input_rescaling")(x))
    out = keras.ops.convert_to_numpy(model.get_layer("input_normalization")(scaled))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-3)


def test_a_feature_constant_on_the_training_rows_is_only_centred() -> None:
    spec = make_spec()
    x, _ = make_data(spec)
    x = np.array(x, dtype="float32")
    x[:, 0] = 0.0  # a corner pixel, blank on every training row
    info = spec.dataset.info
    hypermodel = SpecHyperModel(spec, info.input_shape, info.n_outputs, spec.task, 4, x)
    model = hypermodel.build(hyperparameters_from_values(spec, {}))
    row = x[:1].copy()
    row[0, 0] = 16.0  # not blank on a validation row
    out = keras.ops.convert_to_numpy(model.get_layer("input_normalization")(row))
    assert out[0, 0] == pytest.approx(16.0)  # not 16 / sqrt(epsilon) ~ 5e4
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.get_layer("input_normalization")(x))[:, 1:].std(axis=0),
        1.0,
        atol=1e-3,
    )


def test_rescale_alone() -> None:
    spec = make_spec(model={"input": {"rescale": 1 / 255, "standardize": False}})
    _, _, model = build(spec)
    assert model.get_layer("input_rescaling").scale == pytest.approx(1 / 255)
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)


@pytest.mark.parametrize(
    ("activation", "layer_type"),
    [
        ("leaky_relu", keras.layers.LeakyReLU),
        ("prelu", keras.layers.PReLU),
        ("rrelu", keras_objects.RandomizedLeakyReLU),
    ],
)
def test_activation_layers(activation: str, layer_type: type) -> None:
    spec = make_spec(
        model={
            "activation": activation,
            "leaky_alpha": 0.05,
            "rrelu_lower": 0.3,
            "rrelu_upper": 0.1,
        }
    )
    _, _, model = build(spec)
    layer = model.get_layer("act_1")
    assert isinstance(layer, layer_type)
    if activation == "leaky_relu":
        assert layer.negative_slope == pytest.approx(0.05)
    if activation == "rrelu":
        assert (layer.lower, layer.upper) == pytest.approx((0.1, 0.3))


def test_string_activation_inside_dense() -> None:
    _, _, model = build(make_spec(model={"activation": "tanh"}))
    assert model.get_layer("dense_0").activation is keras.activations.tanh
    assert kinds(model) == ["Dense", "Dense", "Dense"]


@pytest.mark.parametrize(
    ("kind", "layer_type"),
    [("dropout", keras.layers.Dropout), ("alpha_dropout", keras.layers.AlphaDropout)],
)
def test_dropout_kind_and_rate(kind: str, layer_type: type) -> None:
    spec = make_spec(model={"dropout": 0.25, "dropout_kind": kind})
    _, _, model = build(spec)
    for i in range(2):
        layer = model.get_layer(f"dropout_{i}")
        assert type(layer) is layer_type and layer.rate == pytest.approx(0.25)


def test_per_layer_dropout_zero_means_no_layer() -> None:
    spec = make_spec(
        model={"per_layer": ["dropout"], "dropout": {"type": "choice", "values": [0.0, 0.5]}}
    )
    _, _, model = build(spec, {"dropout_0": 0.0, "dropout_1": 0.5})
    assert [layer.name for layer in model.layers if "dropout" in layer.name] == ["dropout_1"]


@pytest.mark.parametrize(
    ("kind", "cls", "attrs"),
    [
        ("l1", keras.regularizers.L1, {"l1": 0.01}),
        ("l2", keras.regularizers.L2, {"l2": 0.01}),
        ("l1_l2", keras.regularizers.L1L2, {"l1": 0.01, "l2": 0.01}),
    ],
)
def test_regularizers(kind: str, cls: type, attrs: dict[str, float]) -> None:
    spec = make_spec(model={"regularizer": kind, "regularization_factor": 0.01})
    _, _, model = build(spec)
    reg = model.get_layer("dense_1").kernel_regularizer
    assert type(reg) is cls
    for name, value in attrs.items():
        assert float(getattr(reg, name)) == pytest.approx(value)


def test_no_regularizer_and_max_norm() -> None:
    _, _, plain = build(make_spec())
    assert plain.get_layer("dense_0").kernel_regularizer is None
    assert plain.get_layer("dense_0").kernel_constraint is None
    _, _, model = build(make_spec(model={"max_norm": 2.5}))
    constraint = model.get_layer("dense_0").kernel_constraint
    assert isinstance(constraint, keras.constraints.MaxNorm)
    assert constraint.max_value == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("name", "cls", "attrs"),
    [
        ("sgd", keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
        ("momentum", keras.optimizers.SGD, {"momentum": 0.8, "nesterov": False}),
        ("nesterov", keras.optimizers.SGD, {"momentum": 0.8, "nesterov": True}),
        ("adagrad", keras.optimizers.Adagrad, {}),
        ("adadelta", keras.optimizers.Adadelta, {"rho": 0.7}),
        ("rmsprop", keras.optimizers.RMSprop, {"rho": 0.7}),
        ("adam", keras.optimizers.Adam, {"beta_1": 0.85, "beta_2": 0.99}),
        ("adamw", keras.optimizers.AdamW, {"beta_1": 0.85, "beta_2": 0.99, "weight_decay": 0.01}),
        ("nadam", keras.optimizers.Nadam, {"beta_1": 0.85, "beta_2": 0.99}),
        ("adamax", keras.optimizers.Adamax, {"beta_1": 0.85, "beta_2": 0.99}),
        ("ftrl", keras.optimizers.Ftrl, {}),
    ],
)
def test_optimizers(name: str, cls: type, attrs: dict[str, Any]) -> None:
    spec = make_spec(
        optimizer={
            "name": name,
            "learning_rate": 0.02,
            "momentum": 0.8,
            "rho": 0.7,
            "beta_1": 0.85,
            "beta_2": 0.99,
            "weight_decay": 0.01,
        }
    )
    _, _, model = build(spec)
    opt = model.optimizer
    assert type(opt) is cls
    assert opt.get_config()["learning_rate"] == pytest.approx(0.02)
    for attr, value in attrs.items():
        assert getattr(opt, attr) == pytest.approx(value)


@pytest.mark.parametrize("clipping", ["clipvalue", "clipnorm", "global_clipnorm"])
def test_clipping(clipping: str) -> None:
    spec = make_spec(optimizer={"clipping": clipping, "clip_threshold": 0.5})
    _, _, model = build(spec)
    config = model.optimizer.get_config()
    for key in ("clipvalue", "clipnorm", "global_clipnorm"):
        assert config[key] == (0.5 if key == clipping else None)


def test_schedules_in_epochs() -> None:
    lr = 0.1
    cases = {
        "power": (
            {"decay_epochs": 2.0, "power": 1.0},
            keras_objects.PowerSchedule,
            {20: 0.05, 60: 0.025},
        ),
        "exponential": (
            {"decay_epochs": 2.0},
            keras.optimizers.schedules.ExponentialDecay,
            {20: 0.01},
        ),
        "piecewise": (
            {"boundaries": [1, 3], "multipliers": [1.0, 0.5, 0.1]},
            keras.optimizers.schedules.PiecewiseConstantDecay,
            {5: 0.1, 15: 0.05, 31: 0.01},
        ),
        "one_cycle": ({}, keras_objects.OneCycleSchedule, {0: 0.01, 20: 0.1, 36: 0.01, 40: 0.0001}),
    }
    for kind, (extra, cls, expected) in cases.items():
        spec = make_spec(
            optimizer={"learning_rate": lr},
            schedule={"kind": kind, **extra},
            training={"epochs": 4, "batch_size": 16},
        )
        hypermodel, hp, model = build(spec, steps_per_epoch=10)
        schedule = hypermodel.learning_rate(hp)
        assert type(schedule) is cls, kind
        assert model.optimizer.get_config()["learning_rate"]["class_name"] == cls.__name__
        for step, value in expected.items():
            got = float(keras.ops.convert_to_numpy(schedule(step)))
            assert got == pytest.approx(value, rel=1e-4), (kind, step)


def test_steps_per_epoch_follow_searched_batch_size() -> None:
    spec = make_spec(
        schedule={"kind": "power", "decay_epochs": 1.0},
        training={"batch_size": {"type": "choice", "values": [16, 32]}},
    )
    hypermodel, hp, _ = build(spec, {"batch_size": 32}, steps_per_epoch=999)
    assert hypermodel.trial_steps_per_epoch(hp) == 2  # 64 training rows / 32
    assert hypermodel.learning_rate(hp).decay_steps == 2


def test_plateau_is_a_callback() -> None:
    spec = make_spec(
        schedule={
            "kind": {"type": "choice", "values": ["constant", "plateau"]},
            "factor": 0.3,
            "patience": 2,
        },
        training={"early_stopping": {"monitor": "val_loss"}},
    )
    hypermodel, hp, model = build(spec, {"schedule": "plateau"})
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(1e-3)
    callback = hypermodel.plateau_callback(hp)
    assert isinstance(callback, keras.callbacks.ReduceLROnPlateau)
    assert (callback.monitor, callback.factor, callback.patience, callback.mode) == (
        "val_loss",
        0.3,
        2,
        "min",
    )
    hp_constant = hyperparameters_from_values(spec, {"schedule": "constant"})
    assert hypermodel.plateau_callback(hp_constant) is None


def test_epochs_and_batch_size() -> None:
    spec = make_spec(training={"epochs": {"type": "int", "min": 2, "max": 9}, "batch_size": 8})
    hypermodel, hp, _ = build(spec, {"epochs": 7})
    assert hypermodel.epochs_and_batch_size(hp) == (7, 8)


def test_normalization_adapted_on_training_data() -> None:
    spec = make_spec()
    x, _ = make_data(spec)
    info = spec.dataset.info
    hypermodel = SpecHyperModel(spec, info.input_shape, info.n_outputs, spec.task, 4, x)
    model = hypermodel.build(hyperparameters_from_values(spec, {}))
    layer = model.get_layer("input_normalization")
    np.testing.assert_allclose(np.ravel(layer.get_config()["mean"]), x.mean(axis=0), rtol=1e-5)
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-3)


def test_standardize_needs_training_data() -> None:
    spec = make_spec()
    with pytest.raises(ValueError, match="normalization_data"):
        SpecHyperModel(spec, (4,), 3, spec.task, 4, None)
    plain = make_spec(model={"input": {"standardize": False}})
    model = SpecHyperModel(plain, (4,), 3, plain.task, 4, None).build(
        hyperparameters_from_values(plain, {})
    )
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)


def test_images_are_flattened() -> None:
    spec = make_spec(dataset={"name": "mnist"}, model={"depth": 1, "units": 4})
    x = np.random.default_rng(0).random((16, 28, 28)).astype("float32")
    hypermodel = SpecHyperModel(spec, (28, 28), 10, spec.task, 1, x)
    model = hypermodel.build(hyperparameters_from_values(spec, {}))
    assert isinstance(model.layers[1], keras.layers.Flatten)
    assert model.get_layer("input_normalization").get_config()["mean"] is not None
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    ("task", "activation", "units", "loss"),
    [
        ("multiclass", "softmax", 3, "sparse_categorical_crossentropy"),
        ("binary", "sigmoid", 1, "binary_crossentropy"),
        ("regression", "linear", 1, "huber"),
    ],
)
def test_output_and_loss_per_task_and_logged_metrics(
    task: str, activation: str, units: int, loss: str
) -> None:
    spec = make_spec(task, training={"loss": "huber"} if task == "regression" else {})
    x, y = make_data(spec)
    hypermodel, hp, model = build(spec)
    output = model.get_layer("output")
    assert output.units == units
    assert output.activation is getattr(keras.activations, activation)
    assert model.loss == loss
    history = hypermodel.fit(hp, model, x, y, validation_split=0.25, verbose=0)
    logged = set(history.history)
    expected = set(TASK_METRICS[spec.task]) | {f"val_{m}" for m in TASK_METRICS[spec.task]}
    assert expected <= logged, logged
    assert len(history.history["loss"]) == 1  # epochs come from the hyperparameters


@pytest.mark.parametrize("schedule", ["power", "one_cycle"])
def test_save_load_roundtrip(tmp_path: Path, schedule: str) -> None:
    spec = make_spec(
        "binary",
        model={"activation": "rrelu", "kernel_initializer": "auto", "dropout": 0.1},
        schedule={"kind": schedule},
        search={"seed": 3},
    )
    x, y = make_data(spec)
    hypermodel, hp, model = build(spec, steps_per_epoch=4)
    hypermodel.fit(hp, model, x, y, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert isinstance(loaded.get_layer("act_0"), keras_objects.RandomizedLeakyReLU)
    expected_cls = (
        keras_objects.PowerSchedule if schedule == "power" else keras_objects.OneCycleSchedule
    )
    assert loaded.optimizer.get_config()["learning_rate"]["class_name"] == expected_cls.__name__


def test_rrelu_model_differs_between_training_and_inference() -> None:
    spec = make_spec(model={"activation": "rrelu", "input": {"standardize": False}, "depth": 1})
    _, _, model = build(spec)
    x = -np.abs(make_data(spec)[0])
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(inference, keras.ops.convert_to_numpy(model(x, training=False)))
    assert not np.allclose(inference, keras.ops.convert_to_numpy(model(x, training=True)))


def test_pima_example_builds_at_every_depth() -> None:
    path = (
        Path(__file__).resolve().parents[2]
        / "search_spaces"
        / "examples"
        / "pima_combining_all.json"
    )
    spec = JobSpec.model_validate_json(path.read_text())
    values = {
        "depth": 3,
        "units_2": 24,
        "activation_2": "sigmoid",
        "dropout_2": 0.6,
        "optimizer": "adadelta",
    }
    _, _, model = build(spec, values)
    assert model.get_layer("dense_2").units == 24
    assert model.get_layer("dense_2").activation is keras.activations.sigmoid
    assert model.get_layer("dropout_2").rate == pytest.approx(0.6)
    assert isinstance(model.optimizer, keras.optimizers.Adadelta)
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]) == 4


def test_for_training_split_takes_shape_and_moments_from_the_spec_and_rows() -> None:
    spec = make_spec()
    x, _ = make_data(spec)
    hypermodel = SpecHyperModel.for_training_split(spec, x)
    info = spec.dataset.info
    assert (hypermodel.input_shape, hypermodel.n_outputs) == (info.input_shape, info.n_outputs)
    assert hypermodel.train_rows == len(x) and hypermodel.steps_per_epoch is None
    np.testing.assert_allclose(hypermodel.mean, x.mean(axis=0), rtol=1e-5)

    class Subclass(SpecHyperModel):
        pass

    assert type(Subclass.for_training_split(spec, x)) is Subclass
