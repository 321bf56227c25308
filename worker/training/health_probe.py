"""A trial's training health, measured while it trains on a fixed probe batch of training rows.

Each recorded epoch, per hidden layer (``dense_{i}`` and its activation's output, the builder's
stable names): the kernel's gradient norm on the probe batch, its weight norm, the update since
the last record relative to the weights, and the activations' signals (``health.signals``:
dead, saturated and identical units); for the whole model, how much its outputs vary over the
probe rows. Eager TensorFlow on a few hundred rows: tracing a function for it would cost more
than a short trial's epochs.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from health.signals import layer_signals, output_spread

#: probe rows (taken from the training rows with ``PROBE_SEED``: the same rows for every
#: trial of a job, so its trials compare).
PROBE_ROWS = 256
PROBE_SEED = 0
#: at most this many probed epochs per execution (every k-th epoch on longer runs).
MAX_PROBED_EPOCHS = 50
#: the share of training time probing may take (measured: ~9 ms a probe for a 2 x 64 net on
#: digits, ~35 ms for the 300-100-50-50-50 net on Fashion-MNIST rows, one thread).
BUDGET = 0.03


def probe_every(epochs: int) -> int:
    """Probe every k-th epoch so that at most ``MAX_PROBED_EPOCHS`` of ``epochs`` are."""
    return max(1, math.ceil(epochs / MAX_PROBED_EPOCHS))


def _activation_name(layer: keras.layers.Layer) -> str:
    """The activation a hidden layer applies, as the spec names it."""
    if isinstance(layer, keras.layers.LeakyReLU):
        return "leaky_relu"
    if isinstance(layer, keras.layers.PReLU):
        return "prelu"
    if isinstance(layer, keras.layers.Activation | keras.layers.Dense):
        return getattr(layer.activation, "__name__", "linear")
    return type(layer).__name__.lower()  # RandomizedLeakyReLU and any layer of our own


def hidden_layers(model: keras.Model) -> list[tuple[keras.layers.Dense, keras.layers.Layer]]:
    """Each hidden ``dense_{i}`` and the layer whose output is its activation (``act_{i}`` when
    the activation is a layer of its own, else the dense layer)."""
    names = {layer.name: layer for layer in model.layers}
    found = []
    i = 0
    while f"dense_{i}" in names:
        dense = names[f"dense_{i}"]
        found.append((dense, names.get(f"act_{i}", dense)))
        i += 1
    return found


def _norm(value: Any) -> float:
    return float(np.linalg.norm(np.asarray(value, dtype=np.float64)))


def _finite(value: float) -> float | None:
    return float(f"{value:.4g}") if math.isfinite(value) else None


class HealthProbe:
    """Measures one model's health on ``x``/``y`` (the probe rows): after its first epoch and
    its last allowed one, and between them every ``every`` epochs at least, further apart when
    measuring would otherwise take more than ``BUDGET`` of the training time (``schedule``)."""

    def __init__(
        self, x: np.ndarray, y: np.ndarray, every: int = 1, last_epoch: int | None = None
    ) -> None:
        self.x = tf.convert_to_tensor(x)
        self.y = tf.convert_to_tensor(y)
        targets = np.asarray(y)
        self.y_std = _finite(float(np.std(targets))) if targets.dtype.kind == "f" else None
        self.every = max(1, every)
        #: the last epoch the run may train: always probed (the verdicts read the end)
        self.last_epoch = last_epoch
        self._next = 0
        self._outputs: keras.Model | None = None
        self._loss: Any = None
        self._layers: list[tuple[keras.layers.Dense, keras.layers.Layer]] = []
        self._last_kernels: list[np.ndarray] = []

    @classmethod
    def of_rows(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        seed: int | None,
        every: int = 1,
        last_epoch: int | None = None,
    ) -> HealthProbe:
        """A probe of at most ``PROBE_ROWS`` training rows, drawn with ``seed``."""
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(len(x), size=min(PROBE_ROWS, len(x)), replace=False))
        return cls(x[picked], y[picked], every, last_epoch)

    def start(self, model: keras.Model) -> None:
        """Follow ``model`` (built, before its first epoch): its weights now are the first
        reference of the update ratio."""
        self._layers = hidden_layers(model)
        outputs = [act.output for _, act in self._layers] + [model.output]
        self._outputs = keras.Model(model.inputs, outputs)
        self._loss = keras.losses.get(model.loss)
        self._last_kernels = [np.array(dense.kernel) for dense, _ in self._layers]

    def _targets(self, predicted: Any) -> Any:
        """The probe's targets shaped as the predictions of a one-output model (``(n, 1)``):
        a loss function given ``(n,)`` against them would broadcast to ``(n, n)``."""
        if len(self.y.shape) == 1 and len(predicted.shape) == 2 and predicted.shape[-1] == 1:
            return tf.reshape(self.y, (-1, 1))
        return self.y

    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is one to record."""
        return epoch >= self._next or epoch == self.last_epoch

    def schedule(self, epoch: int, probe_s: float, epoch_s: float) -> None:
        """After probing ``epoch`` took ``probe_s`` (the epoch itself ``epoch_s``): the next
        probe comes ``every`` epochs later, or as many more as keep probing within ``BUDGET``
        of the training time (small nets' short epochs are probed every few)."""
        spacing = math.ceil(probe_s / (BUDGET * epoch_s)) if epoch_s > 0 else 1
        self._next = epoch + max(self.every, spacing)

    def measure(self, model: keras.Model) -> dict[str, Any]:
        """The health record of the model as it is now: ``{"layers": [...], "out_std": ...}``;
        each layer ``{"name", "act", "g", "w", "u", "mean", "std", "dead", "sat", "same"}``
        (gradient norm, weight norm, update ratio since the last record; null where not finite
        or not applicable)."""
        if self._outputs is None:
            raise RuntimeError("HealthProbe.start(model) was not called")
        kernels = [dense.kernel for dense, _ in self._layers]
        with tf.GradientTape() as tape:
            # one forward pass gives the hidden activations and the prediction; the loss
            # without weight penalties (their gradient would hide a vanishing one)
            activations = self._outputs(self.x, training=False)
            loss = keras.ops.mean(self._loss(self._targets(activations[-1]), activations[-1]))
        gradients = tape.gradient(loss, kernels) if kernels else []
        layers = []
        for index, (dense, act) in enumerate(self._layers):
            weights = np.array(dense.kernel)
            weight_norm = _norm(weights)
            update = _norm(weights - self._last_kernels[index]) / (weight_norm or 1.0)
            gradient = gradients[index]
            layers.append(
                {
                    "name": dense.name,
                    "act": _activation_name(act),
                    "g": None if gradient is None else _finite(_norm(gradient)),
                    "w": _finite(weight_norm),
                    "u": _finite(update),
                    **layer_signals(np.asarray(activations[index]), _activation_name(act), weights),
                }
            )
            self._last_kernels[index] = weights
        spread = output_spread(np.asarray(activations[-1], dtype=np.float64))
        record = {"layers": layers, "out_std": _finite(spread), "loss": _finite(float(loss))}
        if self.y_std is not None:  # a regression: the spread a prediction should have
            record["y_std"] = self.y_std
        return record
