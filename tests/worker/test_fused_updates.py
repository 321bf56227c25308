"""Adam's fused kernel (``worker.training.fused_updates``) updates variables as Keras's own
``Adam.update_step`` does, with Keras's clipping, weight decay and schedule around it, and leaves
the optimizer as it was."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from worker.training.fused_updates import fusable, fused_updates

STEPS = 25


def _gradients(shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = np.geomspace(1e-8, 3.0, num=int(np.prod(shape))).reshape(shape)  # tiny to clipped
    return [(rng.normal(size=shape) * scale).astype("float32") for _ in range(STEPS)]


def _train(make: Any, fused: bool, sparse: bool = False) -> tuple[list[np.ndarray], int]:
    """A variable and the optimizer's own variables after ``STEPS`` traced updates."""
    keras.utils.set_random_seed(0)
    variable = keras.Variable(np.random.default_rng(1).normal(size=(6, 4)).astype("float32"))
    optimizer = make()
    optimizer.build([variable])
    gradients = _gradients((6, 4))
    with fused_updates(optimizer) if fused else nullcontext():

        @tf.function(autograph=False)
        def step(gradient: tf.Tensor) -> None:
            if sparse:  # rows 1 and 4 only, as an embedding's gradient
                gradient = tf.IndexedSlices(
                    tf.gather(gradient, [1, 4]), tf.constant([1, 4]), tf.constant([6, 4])
                )
            optimizer.apply([gradient], [variable])

        for gradient in gradients:
            step(tf.constant(gradient))
    state = [variable.numpy()] + [v.numpy() for v in optimizer.variables]
    return state, int(optimizer.iterations.numpy())


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adam, clipnorm and a schedule": lambda: keras.optimizers.Adam(
        keras.optimizers.schedules.ExponentialDecay(0.05, 5, 0.5), beta_1=0.8, clipnorm=1.0
    ),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.05, global_clipnorm=2.0),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_fused_kernel_updates_as_kerass_adam_does(name: str) -> None:
    make = OPTIMIZERS[name]
    assert fusable(make())
    (keras_state, keras_steps), (fused_state, fused_steps) = (
        _train(make, fused=False),
        _train(make, fused=True),
    )
    assert fused_steps == keras_steps == STEPS
    assert not np.allclose(keras_state[0], np.random.default_rng(1).normal(size=(6, 4)))
    for expected, got in zip(keras_state, fused_state, strict=True):  # weights, m, v
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_sparse_gradients_keep_kerass_step() -> None:
    make = OPTIMIZERS["adam"]
    keras_state, _ = _train(make, fused=False, sparse=True)
    fused_state, _ = _train(make, fused=True, sparse=True)
    for expected, got in zip(keras_state, fused_state, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "optimizer",
    [
        keras.optimizers.Adam(0.01, amsgrad=True),
        keras.optimizers.SGD(0.1, momentum=0.9),
        keras.optimizers.RMSprop(0.01),
    ],
    ids=["amsgrad", "sgd", "rmsprop"],
)
def test_other_optimizers_are_left_as_they_are(optimizer: Any) -> None:
    assert not fusable(optimizer)
    with fused_updates(optimizer):
        assert "_backend_update_step" not in vars(optimizer)


def test_the_optimizer_is_kerass_own_again_and_saves_as_such(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    with fused_updates(model.optimizer):
        assert "_backend_update_step" in vars(model.optimizer)
        model.fit(x, y, epochs=1, verbose=0)
    assert "_backend_update_step" not in vars(model.optimizer)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is keras.optimizers.Adam
    assert int(loaded.optimizer.iterations.numpy()) == 1
