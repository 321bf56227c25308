"""TensorFlow's thread pools in a pool process (imported after the fork, never in the parent)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def configure_tensorflow(threads: int) -> None:
    """Import TensorFlow and set its intra/inter-op thread pools (0 keeps TF's default)."""
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise in a worker's log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    without_graph_rewrites()
    if threads <= 0:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the TF runtime was already initialised in this process
        log.warning("TensorFlow already initialised; thread settings left as they are")


def without_graph_rewrites() -> None:
    """Turn off Grappler, TensorFlow's graph rewriting before a function's first run.

    Measured (bench/trial_fixed_cost.py): on these dense nets it costs ~0.05-0.08 s of every
    trial's first epoch on digits 2 x 64 (~0.27 s on Fashion-MNIST's 300-100-50-50-50 net) and
    gains nothing after (steady epochs no slower without it, on both). It is process-wide: a
    pool process sets it once."""
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
