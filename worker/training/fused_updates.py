"""Adam's update of each variable as TensorFlow's one fused kernel, in a trial's traced steps.

Keras's ``Adam.update_step`` updates a variable with ~20 small ops (casts, the betas' powers,
the moments' updates, a square root, a division, three assignments), so a dense net's train
step holds a few hundred of them, and tracing the step, which every trial does once, costs
~0.3 ms per op. TensorFlow's ``ResourceApplyAdam`` does the same arithmetic in one kernel
(``lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``, the moments updated in place, then
``var -= lr_t * m / (sqrt(v) + epsilon)``, as Keras writes it). Measured on the digits 2x64
network (one TensorFlow thread): a trial's fixed cost ~40 ms lower, its logs the same to five
decimals (``bench/trial_fixed_cost.py``).

Only the per-variable step is replaced, while a trial trains (``fused_updates``): Keras still
clips the gradients, applies AdamW's decoupled weight decay, follows the learning-rate schedule
and counts iterations, and the optimizer a trial's model is saved with is Keras's own. AMSGrad
and sparse gradients keep Keras's step (the kernel has neither).
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import tensorflow as tf

#: where a step's scalar inputs are kept on the optimizer while its updates are fused
_SCALARS = "_fused_adam_scalars"


def _handle(variable: Any) -> tf.Tensor:
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def _scalars(optimizer: Any, learning_rate: Any, dtype: Any) -> dict[str, tf.Tensor]:
    """The kernel's scalar inputs for this step, made once for all the step's variables: Keras
    passes every variable of one step the same ``learning_rate`` tensor."""
    cached = vars(optimizer).get(_SCALARS)
    if cached is not None and cached[0] is learning_rate and cached[1] == dtype:
        return cached[2]
    step = tf.cast(optimizer.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(optimizer.beta_1, dtype), tf.cast(optimizer.beta_2, dtype)
    scalars = {
        "beta1_power": tf.pow(beta_1, step),
        "beta2_power": tf.pow(beta_2, step),
        "lr": tf.cast(learning_rate, dtype),
        "beta1": beta_1,
        "beta2": beta_2,
        "epsilon": tf.cast(optimizer.epsilon, dtype),
    }
    vars(optimizer)[_SCALARS] = (learning_rate, dtype, scalars)
    return scalars


def _fused_adam_step(self: Any, gradient: Any, variable: Any, learning_rate: Any) -> None:
    if isinstance(gradient, tf.IndexedSlices):
        return type(self).update_step(self, gradient, variable, learning_rate)
    index = self._get_variable_index(variable)
    tf.raw_ops.ResourceApplyAdam(
        var=_handle(variable),
        m=_handle(self._momentums[index]),
        v=_handle(self._velocities[index]),
        grad=tf.cast(gradient, variable.dtype),
        **_scalars(self, learning_rate, variable.dtype),
    )
    return None


def fusable(optimizer: Any) -> bool:
    """Whether ``optimizer``'s step has a fused kernel here: Adam or AdamW without AMSGrad."""
    return isinstance(optimizer, keras.optimizers.Adam) and not optimizer.amsgrad


@contextmanager
def fused_updates(optimizer: Any) -> Iterator[None]:
    """While inside, steps traced with ``optimizer`` update each variable with one fused
    kernel when it is ``fusable``; the optimizer is as before once out."""
    if not fusable(optimizer) or "update_step" in vars(optimizer):
        yield
        return
    # set in the instance's dict: Keras's attribute tracking has nothing to track here
    vars(optimizer)["update_step"] = types.MethodType(_fused_adam_step, optimizer)
    try:
        yield
    finally:
        del vars(optimizer)["update_step"]
        vars(optimizer).pop(_SCALARS, None)
