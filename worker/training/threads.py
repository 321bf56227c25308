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

    graph_rewrites(POOL_REWRITES)
    if threads <= 0:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the TF runtime was already initialised in this process
        log.warning("TensorFlow already initialised; thread settings left as they are")


#: Grappler's passes that run by default, the remapper aside (``graph_rewrites``)
DEFAULT_PASSES = (
    "layout_optimizer",
    "constant_folding",
    "shape_optimization",
    "arithmetic_optimization",
    "dependency_optimization",
    "loop_optimization",
    "function_optimization",
    "implementation_selector",
)
#: what ``graph_rewrites`` can set: every default pass, the remapper alone, or none
REWRITES = ("all", "remapping", "none")
#: a pool process runs without Grappler. Measured (bench/trial_fixed_cost.py, bench/README.md):
#: on these dense nets Grappler costs 0.03-0.27 s of every trial's first epoch; steady epochs
#: were as fast without it on one host and 9-12% slower on another, so going without pays for
#: trials of a few epochs and can cost a few percent on ten-epoch ones (the remapper alone did
#: not do better).
POOL_REWRITES = "none"


def graph_rewrites(which: str) -> None:
    """Set which of Grappler's graph rewrites run before a traced function's first run
    (process-wide): ``all`` (TensorFlow's default), ``remapping`` (only the remapper, which fuses
    a dense layer's matmul, bias and activation into one kernel) or ``none``."""
    if which not in REWRITES:
        raise ValueError(f"graph rewrites: {which!r} is not one of {REWRITES}")
    import tensorflow as tf

    if which == "none":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        return
    options = {name: which == "all" for name in DEFAULT_PASSES}
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": False, "remapping": True, **options}
    )
