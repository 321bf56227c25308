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

    if threads <= 0:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the TF runtime was already initialised in this process
        log.warning("TensorFlow already initialised; thread settings left as they are")
