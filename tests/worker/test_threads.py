"""Which of TensorFlow's graph rewrites a pool process runs (``worker.training.threads``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from worker.training.threads import DEFAULT_PASSES, graph_rewrites

# TensorFlow's options are process-wide: each setting is read in a process of its own.
READ = (
    "import json, sys, tensorflow as tf; from worker.training import threads; "
    "getattr(threads, sys.argv[1])(*json.loads(sys.argv[2])); "
    "print(json.dumps(tf.config.optimizer.get_experimental_options()))"
)


def _options(function: str, *arguments: object) -> dict[str, bool]:
    """TensorFlow's optimizer options after ``threads.<function>(*arguments)``."""
    done = subprocess.run(
        [sys.executable, "-c", READ, function, json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_pool_process_runs_without_graph_rewrites() -> None:
    assert _options("configure_tensorflow", 1)["disable_meta_optimizer"] is True


def test_only_the_remapper_or_every_default_pass() -> None:
    remapping = _options("graph_rewrites", "remapping")
    assert remapping["disable_meta_optimizer"] is False and remapping["remapping"] is True
    assert not any(remapping[name] for name in DEFAULT_PASSES)
    every = _options("graph_rewrites", "all")
    assert every["disable_meta_optimizer"] is False
    assert all(every[name] for name in (*DEFAULT_PASSES, "remapping"))


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="'fast' is not one of"):
        graph_rewrites("fast")
