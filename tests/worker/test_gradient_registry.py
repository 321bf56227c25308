"""A trial's traced graphs are freed once it ended: nothing of them stays in TensorFlow's
gradient registry (``worker.training.gradient_registry``)."""

from __future__ import annotations

import gc

import keras
from tensorflow.python.framework.func_graph import FuncGraph

from tests.worker.test_epochs_loop import _data, _model
from worker.training import feeding
from worker.training.epochs_loop import fit_epochs
from worker.training.gradient_registry import PREFIX, forget_trial_gradients, snapshot


def _trial(seed: int, optimizer: str = "sgd") -> None:
    """A 1-epoch trial; ``sgd``: with momentum, whose step is Keras's own (Adam's is a fused
    kernel, which registers nothing: see the last test)."""
    x, y = _data("multiclass")
    model = _model("multiclass", seed)
    if optimizer == "sgd":
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    training = feeding.training_batches(x[:200], y[:200], 32, seed=seed, threads=1)
    validation = feeding.validation_batches(x[200:], y[200:], 32, threads=1)
    fit_epochs(model, training, validation, epochs=1, initial_epoch=0, callbacks=[])


def _graphs_alive() -> int:
    gc.collect()
    return sum(isinstance(o, FuncGraph) for o in gc.get_objects())


def test_a_trials_graphs_are_freed_once_it_ended() -> None:
    kept = snapshot()
    _trial(1)
    keras.backend.clear_session(free_memory=False)
    forget_trial_gradients(kept)
    alive = _graphs_alive()
    for seed in (2, 3, 4):
        _trial(seed)
        keras.backend.clear_session(free_memory=False)
        forget_trial_gradients(kept)
    assert _graphs_alive() == alive
    from tensorflow.python.framework import ops

    assert {k for k in ops._gradient_registry._registry if k.startswith(PREFIX)} <= kept


def test_without_it_every_trial_leaves_its_graphs() -> None:
    """The upstream leak this works around (if this fails, TensorFlow fixed it: the module
    can go)."""
    kept = snapshot()
    _trial(5)
    keras.backend.clear_session(free_memory=False)
    alive = _graphs_alive()
    _trial(6)
    keras.backend.clear_session(free_memory=False)
    try:
        assert _graphs_alive() > alive
    finally:
        assert forget_trial_gradients(kept) >= 2


def test_a_trial_on_adams_fused_kernel_registers_no_gradient() -> None:
    """Keras's step all-reduces the gradients over the one replica, which registers a custom
    gradient per trace; the fused step (``worker.training.fused_updates``) skips that."""
    kept = snapshot()
    _trial(7, optimizer="adam")
    assert snapshot() == kept
