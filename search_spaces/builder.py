"""Hyperparameters -> a compiled Keras dense network (``SpecHyperModel.build``).

The model is ``Input -> [Flatten] -> [Rescaling] -> [Normalization] -> [BatchNormalization] ->
hidden stack -> output``. Each hidden layer is ``Dense`` (+ activation) with optional batch norm
(``before``: ``Dense(use_bias=False) -> BN -> activation``; ``after``: ``Dense + activation ->
BN``; ``before_dense``: ``BN -> Dense + activation``) and optional (alpha) dropout. Layer names
are stable: ``dense_{i}``, ``bn_{i}``, ``act_{i}``, ``dropout_{i}``, ``input_rescaling``,
``input_normalization``, ``input_batch_norm``, ``output``.
"""

from __future__ import annotations

import math
from typing import Any, Self

import keras
import keras_tuner
import numpy as np

from search_spaces.datasets import Task, infer_direction
from search_spaces.hyperparameters import declare, layer_name, value
from search_spaces.keras_objects import (
    OneCycleSchedule,
    PowerSchedule,
    RandomizedLeakyReLU,
    exponential_schedule,
    piecewise_schedule,
)
from search_spaces.layer_spec import auto_initializer
from search_spaces.params import is_fixed
from search_spaces.schema import JobSpec

#: activations passed to ``Dense(activation=...)`` / ``Activation(...)`` as strings.
STRING_ACTIVATIONS = frozenset(
    {"relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid", "linear"}
)

INITIALIZERS: dict[str, type[keras.initializers.Initializer]] = {
    "glorot_uniform": keras.initializers.GlorotUniform,
    "glorot_normal": keras.initializers.GlorotNormal,
    "he_uniform": keras.initializers.HeUniform,
    "he_normal": keras.initializers.HeNormal,
    "lecun_uniform": keras.initializers.LecunUniform,
    "lecun_normal": keras.initializers.LecunNormal,
    "random_normal": keras.initializers.RandomNormal,
}
CONSTANT_INITIALIZERS: dict[str, type[keras.initializers.Initializer]] = {
    "zeros": keras.initializers.Zeros,
    "ones": keras.initializers.Ones,
}
OPTIMIZERS: dict[str, type[keras.optimizers.Optimizer]] = {
    "sgd": keras.optimizers.SGD,
    "momentum": keras.optimizers.SGD,
    "nesterov": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "adadelta": keras.optimizers.Adadelta,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "nadam": keras.optimizers.Nadam,
    "adamax": keras.optimizers.Adamax,
    "ftrl": keras.optimizers.Ftrl,
}


#: a feature whose variance on the training rows is at most this is constant there.
CONSTANT_VARIANCE = 1e-10


def derive_seed(seed: int | None, *parts: int) -> int | None:
    """A deterministic seed per layer/use, or None when the search is unseeded."""
    if seed is None:
        return None
    mixed = seed
    for part in parts:
        mixed = (mixed * 1_000_003 + part + 1) % (2**31 - 1)
    return mixed


class SpecHyperModel(keras_tuner.HyperModel):
    """Builds and compiles the dense network of ``spec`` for one set of hyperparameters.

    ``normalization_data`` is the training split (only): its mean/variance are computed once
    here and reused by every build. ``steps_per_epoch`` turns schedule periods in epochs into
    steps; it is used as given only when the batch size is fixed, otherwise it is derived per
    trial from ``train_rows`` (default: ``len(normalization_data)``, else the spec's training
    rows) and the trial's batch size.
    """

    def __init__(
        self,
        spec: JobSpec,
        input_shape: tuple[int, ...],
        n_outputs: int,
        task: Task,
        steps_per_epoch: int | None = None,
        normalization_data: np.ndarray | None = None,
        *,
        train_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.n_outputs = n_outputs
        self.task = Task(task)
        flatten = spec.model.input.flatten
        self.flatten = len(self.input_shape) > 1 if flatten is None else flatten
        self.steps_per_epoch = steps_per_epoch
        if train_rows is None and normalization_data is not None:
            train_rows = len(normalization_data)
        self.train_rows = train_rows or spec.dataset.training_rows
        self.mean: np.ndarray | None = None
        self.variance: np.ndarray | None = None
        if normalization_data is not None:
            self.mean, self.variance = self._moments(np.asarray(normalization_data))
        elif True in spec.model.input.standardize.candidates():
            raise ValueError("input standardization needs normalization_data (the training split)")

    @classmethod
    def for_training_split(cls, spec: JobSpec, x_train: np.ndarray) -> Self:
        """The hypermodel of ``spec`` on the dataset it names, standardizing with the moments
        of ``x_train`` (the training split only); steps per epoch follow each trial's batch."""
        info = spec.dataset.info
        return cls(spec, info.input_shape, info.n_outputs, spec.task, normalization_data=x_train)

    def _moments(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The Normalization layer sits after the Rescaling one: its moments are of rescaled data.
        data = data.astype("float64") * (self.spec.model.input.rescale or 1.0)
        data = data.reshape(len(data), -1) if self.flatten else data
        axes = tuple(range(data.ndim - 1))
        variance = data.var(axis=axes)
        # a feature constant on the training rows is only centred (scikit-learn's rule): divided
        # by ~0, any other value on a validation row became ~1e5 (digits' corner pixels on a
        # few hundred rows: validation losses of 1e5 at 92% accuracy, bench/health_verdicts.py)
        variance = np.where(variance > CONSTANT_VARIANCE, variance, 1.0)
        return data.mean(axis=axes).astype("float32"), variance.astype("float32")

    # -- hyperparameter access -------------------------------------------------------------

    def epochs_and_batch_size(self, hp: keras_tuner.HyperParameters) -> tuple[int, int]:
        """The trial's epochs (an upper bound under early stopping) and batch size."""
        return int(hp.get("epochs")), int(hp.get("batch_size"))

    def trial_steps_per_epoch(self, hp: keras_tuner.HyperParameters) -> int:
        """Optimizer steps per epoch for this trial's batch size."""
        if self.steps_per_epoch is not None and is_fixed(self.spec.training.batch_size):
            return max(1, int(self.steps_per_epoch))
        return max(1, math.ceil(self.train_rows / int(hp.get("batch_size"))))

    def plateau_callback(
        self, hp: keras_tuner.HyperParameters
    ) -> keras.callbacks.ReduceLROnPlateau | None:
        """ReduceLROnPlateau on the early-stopping monitor when the schedule is ``plateau``."""
        if value(hp, "schedule") != "plateau":
            return None
        monitor = self.spec.early_stopping_monitor
        return keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            factor=float(hp.get("plateau_factor")),
            patience=int(hp.get("plateau_patience")),
            mode=infer_direction(monitor),
        )

    # -- building --------------------------------------------------------------------------

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        declare(self.spec, hp)
        seed = self.spec.search.seed
        inputs = keras.Input(shape=self.input_shape, name="features")
        x = inputs
        if self.flatten and len(self.input_shape) > 1:
            x = keras.layers.Flatten(name="flatten")(x)
        rescale = self.spec.model.input.rescale
        if rescale is not None:
            x = keras.layers.Rescaling(rescale, name="input_rescaling")(x)
        if hp.get("input_standardize"):
            if self.mean is None:
                raise ValueError("input standardization needs normalization_data")
            x = keras.layers.Normalization(
                mean=self.mean, variance=self.variance, name="input_normalization"
            )(x)
        if hp.get("input_batch_norm"):
            x = keras.layers.BatchNormalization(name="input_batch_norm")(x)
        for i in range(int(hp.get("depth"))):
            x = self._hidden_layer(hp, x, i, seed)
        x = self._output_layer(x, seed)
        model = keras.Model(inputs, x, name="dense_network")
        loss, metrics = self._loss_and_metrics(hp)
        model.compile(optimizer=self.optimizer(hp), loss=loss, metrics=metrics)
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any):
        """``model.fit`` with the trial's epochs/batch size (unless given) and plateau callback."""
        epochs, batch_size = self.epochs_and_batch_size(hp)
        kwargs.setdefault("epochs", epochs)
        kwargs.setdefault("batch_size", batch_size)
        plateau = self.plateau_callback(hp)
        if plateau is not None:
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), plateau]
        return model.fit(*args, **kwargs)

    def _layer_value(self, hp: keras_tuner.HyperParameters, base: str, i: int) -> Any:
        return hp.get(layer_name(base, i, self.spec.model.is_per_layer(base)))

    def _units(self, hp: keras_tuner.HyperParameters, i: int) -> int:
        layer = self.spec.model.layer(i)
        if layer is not None:
            return layer.units
        return int(self._layer_value(hp, "units", i))

    def _suffix(self, base: str, i: int) -> str:
        return f"_{i}" if self.spec.model.is_per_layer(base) else ""

    def kernel_initializer(
        self, hp: keras_tuner.HyperParameters, i: int, activation: str, seed: int | None
    ) -> keras.initializers.Initializer:
        """The initializer instance of hidden layer ``i``."""
        name = self._layer_value(hp, "kernel_initializer", i)
        layer_seed = derive_seed(seed, 1, i)
        if name == "auto":
            name = auto_initializer(activation)
        if name == "variance_scaling":
            sfx = self._suffix("kernel_initializer", i)
            return keras.initializers.VarianceScaling(
                scale=float(hp.get(f"vs_scale{sfx}")),
                mode=hp.get(f"vs_mode{sfx}"),
                distribution=hp.get(f"vs_distribution{sfx}"),
                seed=layer_seed,
            )
        if name in CONSTANT_INITIALIZERS:
            return CONSTANT_INITIALIZERS[name]()
        return INITIALIZERS[name](seed=layer_seed)

    def _regularizer(
        self, hp: keras_tuner.HyperParameters
    ) -> keras.regularizers.Regularizer | None:
        kind = hp.get("regularizer")
        if kind == "none":
            return None
        factor = float(hp.get("regularization_factor"))
        if kind == "l1":
            return keras.regularizers.L1(factor)
        if kind == "l2":
            return keras.regularizers.L2(factor)
        return keras.regularizers.L1L2(l1=factor, l2=factor)

    def _activation_layer(
        self, hp: keras_tuner.HyperParameters, activation: str, i: int, seed: int | None
    ) -> keras.layers.Layer:
        sfx = self._suffix("activation", i)
        name = f"act_{i}"
        if activation == "leaky_relu":
            return keras.layers.LeakyReLU(
                negative_slope=float(hp.get(f"leaky_alpha{sfx}")), name=name
            )
        if activation == "prelu":
            return keras.layers.PReLU(name=name)
        if activation == "rrelu":
            lo, hi = sorted(
                (float(hp.get(f"rrelu_lower{sfx}")), float(hp.get(f"rrelu_upper{sfx}")))
            )
            return RandomizedLeakyReLU(lo, hi, seed=derive_seed(seed, 3, i), name=name)
        return keras.layers.Activation(activation, name=name)

    def _hidden_layer(
        self, hp: keras_tuner.HyperParameters, x: Any, i: int, seed: int | None
    ) -> Any:
        activation = self._layer_value(hp, "activation", i)
        placement = self._layer_value(hp, "batch_norm", i)
        max_norm = float(hp.get("max_norm"))
        in_dense = activation in STRING_ACTIVATIONS and placement != "before"
        if placement == "before_dense":
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.Dense(
            self._units(hp, i),
            activation=activation if in_dense else None,
            use_bias=placement != "before",
            kernel_initializer=self.kernel_initializer(hp, i, activation, seed),
            kernel_regularizer=self._regularizer(hp),
            kernel_constraint=keras.constraints.MaxNorm(max_norm) if max_norm > 0 else None,
            name=f"dense_{i}",
        )(x)
        if placement == "before":
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        if not in_dense:
            x = self._activation_layer(hp, activation, i, seed)(x)
        if placement == "after":
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        rate = float(self._layer_value(hp, "dropout", i))
        if rate > 0:
            kind = hp.get("dropout_kind")
            layer = keras.layers.AlphaDropout if kind == "alpha_dropout" else keras.layers.Dropout
            x = layer(rate, seed=derive_seed(seed, 2, i), name=f"dropout_{i}")(x)
        return x

    def _output_layer(self, x: Any, seed: int | None) -> Any:
        if self.task is Task.MULTICLASS:
            units, activation = self.n_outputs, "softmax"
        elif self.task is Task.BINARY:
            units, activation = 1, "sigmoid"
        else:
            units, activation = self.n_outputs, "linear"
        init = keras.initializers.GlorotUniform(seed=derive_seed(seed, 4))
        return keras.layers.Dense(
            units, activation=activation, kernel_initializer=init, name="output"
        )(x)

    def _loss_and_metrics(self, hp: keras_tuner.HyperParameters) -> tuple[str, list[Any]]:
        if self.task is Task.MULTICLASS:
            return "sparse_categorical_crossentropy", ["accuracy"]
        if self.task is Task.BINARY:
            return "binary_crossentropy", ["accuracy", keras.metrics.AUC(name="auc")]
        return hp.get("loss"), ["mae", "mse"]

    # -- optimization ----------------------------------------------------------------------

    def learning_rate(self, hp: keras_tuner.HyperParameters) -> float | Any:
        """A float, or the schedule object of the trial (``plateau`` is a callback: a float)."""
        lr = float(hp.get("learning_rate"))
        kind = hp.get("schedule")
        steps = self.trial_steps_per_epoch(hp)
        if kind == "power":
            return PowerSchedule(lr, float(hp.get("decay_epochs")) * steps, float(hp.get("power")))
        if kind == "exponential":
            return exponential_schedule(lr, float(hp.get("decay_epochs")) * steps)
        if kind == "piecewise":
            sched = self.spec.schedule
            return piecewise_schedule(lr, list(sched.boundaries), list(sched.multipliers), steps)
        if kind == "one_cycle":
            return OneCycleSchedule(lr, int(hp.get("epochs")) * steps)
        return lr

    def optimizer(self, hp: keras_tuner.HyperParameters) -> keras.optimizers.Optimizer:
        """The optimizer of the trial, with its specific arguments and gradient clipping."""
        name = hp.get("optimizer")
        kwargs: dict[str, Any] = {"learning_rate": self.learning_rate(hp)}
        if name in ("momentum", "nesterov"):
            kwargs["momentum"] = float(hp.get("momentum"))
            kwargs["nesterov"] = name == "nesterov"
        elif name in ("rmsprop", "adadelta"):
            kwargs["rho"] = float(hp.get("rho"))
        elif name in ("adam", "adamw", "nadam", "adamax"):
            kwargs["beta_1"] = float(hp.get("beta_1"))
            kwargs["beta_2"] = float(hp.get("beta_2"))
        if name == "adamw":
            kwargs["weight_decay"] = float(hp.get("weight_decay"))
        clipping = hp.get("clipping")
        if clipping != "none":
            kwargs[clipping] = float(hp.get("clip_threshold"))
        return OPTIMIZERS[name](**kwargs)
