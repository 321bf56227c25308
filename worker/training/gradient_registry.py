"""Free each trial's traced graphs, which TensorFlow's registry of custom gradients keeps.

Keras's TensorFlow optimizer sums the gradients over the replicas (``all_reduce``) in every
train step it traces, with one replica too. In a graph that is a ``tf.custom_gradient``, which
registers its gradient function in TensorFlow's process-wide gradient registry under a name of
its own (``CustomGradient-<uid>``) and never removes it; the function holds the traced graph.
So every trial (``Model.fit`` or the worker's epoch loop alike) left its graphs behind: ~5 MB
and ~2,700 Python objects a trial on digits 2 x 64 (measured), which made every later garbage
collection slower and was why pool processes had to be recycled every few dozen trials.
Adam's fused step (``worker.training.fused_updates``) skips that all-reduce, so a trial on Adam
or AdamW registers nothing; every other optimizer still does.
Known upstream (tensorflow/tensorflow#27492, #97697; the same purge is proposed for tf-keras's
``clear_session``, keras-team/tf-keras#898).

A pool process runs one trial at a time and traces nothing outside a trial (its folding thread
runs Keras Tuner's oracles and Optuna's samplers, which trace no graph), so the entries a trial
added are dead once it ended: ``forget_trial_gradients`` removes those added since the
process started (``snapshot``), and a garbage collection then frees the graphs.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
_warned = False

#: the prefix of the names ``tf.custom_gradient`` registers in graph mode
PREFIX = "CustomGradient-"


def _registry() -> dict[str, Any] | None:
    """TensorFlow's gradient registry (a private table: None if a TensorFlow moved it)."""
    from tensorflow.python.framework import ops

    table = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return table if isinstance(table, dict) else None


def snapshot() -> frozenset[str]:
    """The custom gradients registered now (kept by ``forget_trial_gradients``)."""
    table = _registry()
    return frozenset(k for k in table or () if k.startswith(PREFIX))


def forget_trial_gradients(kept: frozenset[str]) -> int:
    """Remove the custom gradients registered since ``kept`` was taken; how many."""
    global _warned
    table = _registry()
    if table is None:
        if not _warned:
            _warned = True
            log.warning(
                "TensorFlow's gradient registry not found: each trial's graphs stay in memory "
                "until the process is recycled (worker_max_memory_per_child_mb)"
            )
        return 0
    dead = [k for k in list(table) if k.startswith(PREFIX) and k not in kept]
    for name in dead:
        del table[name]
    return len(dead)
