"""Adam's update of each variable as TensorFlow's one fused kernel, in a trial's traced steps.

Keras's ``Adam.update_step`` updates a variable with ~20 small ops (casts, the betas' powers,
the moments' updates, a square root, a division, three assignments), so a dense net's train
step holds a few hundred of them, and tracing the step, which every trial does once, costs
~0.3 ms per op. TensorFlow's ``ResourceApplyAdam`` does the same arithmetic in one kernel
(``lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``, the moments updated in place, then
``var -= lr_t * m / (sqrt(v) + epsilon)``, as Keras writes it). Measured on the digits 2x64
network (one TensorFlow thread): a trial's fixed cost ~40 ms lower, its logs the same to five
decimals (``bench/trial_fixed_cost.py``).

Only the step's variable updates are replaced, while a trial trains (``fused_updates``): Keras
still clips the gradients, applies AdamW's decoupled weight decay, follows the learning-rate
schedule and counts iterations, and the optimizer a trial's model is saved with is Keras's own.
The step's scalars (learning rate, the betas' powers) are made once for all its variables.
AMSGrad, sparse gradients and a distribution strategy keep Keras's step.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import tensorflow as tf

#: the TensorFlow optimizer's method that updates one step's variables (after Keras's clipping
#: and weight decay; outside a distribution strategy, its all-reduce over one replica is a no-op)
_STEP = "_backend_update_step"


def _handle(variable: Any) -> tf.Tensor:
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def _scalars(optimizer: Any, learning_rate: Any, dtype: tf.DType) -> dict[str, tf.Tensor]:
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
    """One step's updates (Keras calls this once a step, after clipping and weight decay)."""
    if tf.distribute.has_strategy() or any(isinstance(g, tf.IndexedSlices) for g in grads):
        return type(self)._backend_update_step(self, grads, variables, learning_rate)
    scalars: dict[tf.DType, dict[str, tf.Tensor]] = {}
    for gradient, variable in zip(grads, variables, strict=True):
        dtype = variable.dtype
        if dtype not in scalars:  # made once for all the step's variables
            scalars[dtype] = _scalars(self, learning_rate, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            grad=tf.cast(gradient, dtype),
            **scalars[dtype],
        )
    return None


def fusable(optimizer: Any) -> bool:
    """Whether ``optimizer``'s step has a fused kernel here: Adam or AdamW without AMSGrad."""
    return isinstance(optimizer, keras.optimizers.Adam) and not optimizer.amsgrad


@contextmanager
def fused_updates(optimizer: Any) -> Iterator[None]:
    """While inside, steps traced with ``optimizer`` update each variable with one fused
    kernel when it is ``fusable``; the optimizer is as before once out."""
    if not fusable(optimizer) or _STEP in vars(optimizer):
        yield
        return
    # set in the instance's dict: Keras's attribute tracking has nothing to track here
    vars(optimizer)[_STEP] = types.MethodType(_fused_update_step, optimizer)
    try:
        yield
    finally:
        del vars(optimizer)[_STEP]
