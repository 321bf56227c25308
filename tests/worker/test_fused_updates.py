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

from tests.worker.test_epochs_loop import trained
from worker.training.fused_updates import fusable, fused_updates

STEPS = 25


def _gradients(shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = np.geomspace(1e-8, 3.0, num=int(np.prod(shape))).reshape(shape)  # tiny to clipped
    return [(rng.normal(size=shape) * scale).astype("float32") for _ in range(STEPS)]


def _train(make: Any, fused: bool, sparse: bool = False) -> tuple[list[np.ndarray], int, bool]:
    """A variable and the optimizer's own variables after ``STEPS`` traced updates, the step
    count, and whether the traced step holds the fused kernel."""
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
        graph = step.get_concrete_function(tf.TensorSpec((6, 4), tf.float32)).graph
    kernel = any(op.type == "ResourceApplyAdam" for op in graph.get_operations())
    state = [variable.numpy()] + [v.numpy() for v in optimizer.variables]
    return state, int(optimizer.iterations.numpy()), kernel


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
    (keras_state, keras_steps, keras_kernel), (fused_state, fused_steps, fused_kernel) = (
        _train(make, fused=False),
        _train(make, fused=True),
    )
    assert fused_kernel and not keras_kernel
    assert fused_steps == keras_steps == STEPS
    assert not np.allclose(keras_state[0], np.random.default_rng(1).normal(size=(6, 4)))
    for expected, got in zip(keras_state, fused_state, strict=True):  # weights, m, v
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_sparse_gradients_keep_kerass_step() -> None:
    make = OPTIMIZERS["adam"]
    keras_state, _, _ = _train(make, fused=False, sparse=True)
    fused_state, _, kernel = _train(make, fused=True, sparse=True)
    assert not kernel
    for expected, got in zip(keras_state, fused_state, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


class _OwnStep(keras.optimizers.Adam):
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        super().update_step(gradient, variable, learning_rate)


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.optimizers.Adam(0.01, amsgrad=True),
        lambda: keras.optimizers.SGD(0.1, momentum=0.9),
        lambda: keras.optimizers.RMSprop(0.01),
        lambda: _OwnStep(0.01),
    ],
    ids=["amsgrad", "sgd", "rmsprop", "a subclass with its own step"],
)
def test_other_optimizers_are_left_as_they_are(make: Any) -> None:
    optimizer = make()
    assert not fusable(optimizer)
    with fused_updates(optimizer):
        assert "_backend_update_step" not in vars(optimizer)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_a_trial_on_the_fused_step_ends_as_on_kerass_own(task: str) -> None:
    """The whole loop against Keras's ``fit`` with Keras's own Adam: the kernels round
    differently, and over 21 steps of a net with batch norm that moves the logs by up to ~0.2%
    (tests/worker/test_epochs_loop.py compares the loop and ``fit`` on the same kernel)."""
    on_keras_logs, _ = trained("fit", task, fused_fit=False)
    on_fused_logs, _ = trained("loop", task)
    for on_keras, on_fused in zip(on_keras_logs.epochs, on_fused_logs.epochs, strict=True):
        assert on_fused.keys() == on_keras.keys()
        for name, value in on_keras.items():
            assert on_fused[name] == pytest.approx(value, rel=1e-2, abs=1e-4), name


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
