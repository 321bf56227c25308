"""Adam's step as TensorFlow's fused kernel, in a trial's traced train step.

Keras's ``Adam.update_step`` spends ~20 small ops on each variable, and a trial traces its train
step once at ~0.3 ms an op. ``ResourceApplyAdam`` does the same arithmetic in one kernel
(``lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``, the moments in place, ``m / (sqrt(v) +
epsilon)``). While a trial trains (``fused_updates``), the optimizer's per-step update
(``_backend_update_step``, after Keras's clipping and AdamW's weight decay) runs it on each
variable, with the step's scalars made once, and without the all-reduce over one replica (a sum
of one term, which registered a custom gradient per trace). Keras still follows the schedule
and counts the steps; the optimizer is Keras's own again once out, and so is a saved model's.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend.tensorflow.optimizer import TFOptimizer

#: the TensorFlow optimizer's method that updates one step's variables
_STEP = "_backend_update_step"


def _handle(variable: Any) -> tf.Tensor:
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def _scalars(optimizer: Any, learning_rate: Any, dtype: str) -> dict[str, tf.Tensor]:
    """The kernel's scalar inputs for one step's variables of ``dtype``."""
    step = tf.cast(optimizer.iterations + 1, dtype)  # the count moves after the update
    beta_1, beta_2 = tf.cast(optimizer.beta_1, dtype), tf.cast(optimizer.beta_2, dtype)
    return {
        "beta1_power": tf.pow(beta_1, step),
        "beta2_power": tf.pow(beta_2, step),
        "lr": tf.cast(learning_rate, dtype),
        "beta1": beta_1,
        "beta2": beta_2,
        "epsilon": tf.cast(optimizer.epsilon, dtype),
    }


def _fused_update_step(
    self: Any, grads: list[Any], variables: list[Any], learning_rate: Any
) -> None:
    """One step's updates; Keras's own under a distribution strategy or with sparse gradients."""
    if tf.distribute.has_strategy() or any(isinstance(g, tf.IndexedSlices) for g in grads):
        type(self)._backend_update_step(self, grads, variables, learning_rate)
        return
    scalars: dict[str, dict[str, tf.Tensor]] = {}
    for gradient, variable in zip(grads, variables, strict=True):
        dtype = variable.dtype
        if dtype not in scalars:
            scalars[dtype] = _scalars(self, learning_rate, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            grad=tf.cast(gradient, dtype),
            **scalars[dtype],
        )


def fusable(optimizer: Any) -> bool:
    """Whether ``optimizer`` steps as Keras's Adam does (Adam or AdamW, no AMSGrad, neither its
    step nor its per-step update overridden by a subclass)."""
    kind = type(optimizer)
    return (
        isinstance(optimizer, keras.optimizers.Adam)
        and not optimizer.amsgrad
        and kind.update_step is keras.optimizers.Adam.update_step
        and getattr(kind, _STEP) is getattr(TFOptimizer, _STEP)
    )


@contextmanager
def fused_updates(optimizer: Any) -> Iterator[None]:
    """While inside, steps traced with a ``fusable`` optimizer update with the fused kernel."""
    if not fusable(optimizer) or _STEP in vars(optimizer):
        yield
        return
    # set in the instance's dict: Keras's attribute tracking has nothing to track here
    vars(optimizer)[_STEP] = types.MethodType(_fused_update_step, optimizer)
    try:
        yield
    finally:
        del vars(optimizer)[_STEP]
