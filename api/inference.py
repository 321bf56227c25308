"""Predictions with stored models, computed in a separate *spawned* process.

The API process never imports TensorFlow or Keras: a one-process ``ProcessPoolExecutor`` (spawn
context, created on first use) loads the ``.keras`` artifact there, caches it by sha256 and runs
the model. This module's top level is numpy only, because the child imports it too.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from api.child_process import SpawnedChild
from api.errors import InputValidationError, PredictionFailedError, PredictionTimeoutError

log = logging.getLogger(__name__)

#: models kept loaded in the child process, by sha256.
CHILD_CACHE_SIZE = 4
#: rows per forward pass in the child.
BATCH_SIZE = 1024

_NEED_MODEL = "need_model"


# --- in the parent: input checks and output shaping (numpy only) ------------------------------


def prepare_rows(rows: Sequence[Any], input_shape: Sequence[int], max_rows: int) -> np.ndarray:
    """``rows`` as a float32 array of shape ``(n, *input_shape)``; flattened rows are reshaped.

    Raises ``InputValidationError`` (422) naming the field and the expected shape.
    """
    shape = tuple(int(d) for d in input_shape)
    flat = math.prod(shape)
    if len(rows) > max_rows:
        raise InputValidationError(
            "rows", f"at most {max_rows} rows per request, got {len(rows)}", max_rows, "too_long"
        )
    expected = f"each row must have shape {list(shape)}" + (
        f" (or {flat} values flattened)" if len(shape) > 1 else ""
    )
    try:
        array = np.asarray(rows)
    except ValueError as exc:  # ragged nesting
        raise InputValidationError(
            "rows", f"{expected}; rows differ in shape", None, "input_shape"
        ) from exc
    if array.dtype.kind not in "iuf":
        raise InputValidationError(
            "rows", f"{expected}; values must be numbers", None, "input_shape"
        )
    if array.shape[1:] != shape:
        if array.ndim == 2 and array.shape[1] == flat:
            array = array.reshape((len(array), *shape))
        else:
            got = list(array.shape[1:])
            raise InputValidationError(
                "rows", f"{expected}; got rows of shape {got}", None, "input_shape"
            )
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InputValidationError("rows", "values must be finite numbers", None, "input_shape")
    return array


def format_output(
    task: str,
    mean: np.ndarray,
    std: np.ndarray | None,
    class_labels: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Model outputs -> the JSON fields of a prediction response."""
    n = len(mean)
    mean = np.asarray(mean, dtype=np.float64).reshape(n, -1)
    std = None if std is None else np.asarray(std, dtype=np.float64).reshape(n, -1)
    out: dict[str, Any] = {}
    if task == "regression":
        single = mean.shape[1] == 1
        out["predictions"] = mean[:, 0].tolist() if single else mean.tolist()
        if std is not None:
            out["std"] = std[:, 0].tolist() if single else std.tolist()
        return out
    if task == "binary":
        # one sigmoid unit: the probability of class 1 (a 2-unit softmax: its last column).
        p1 = mean[:, -1]
        classes = (p1 >= 0.5).astype(int)
        out["probabilities"] = p1.tolist()
        out["probability_of"] = class_labels[1] if class_labels and len(class_labels) > 1 else 1
        if std is not None:
            out["std"] = std[:, -1].tolist()
    else:
        classes = mean.argmax(axis=1)
        out["probabilities"] = mean.tolist()
        if std is not None:
            out["std"] = std.tolist()
    out["predictions"] = classes.tolist()
    if class_labels and len(class_labels) > int(classes.max(initial=0)):
        out["labels"] = [class_labels[int(c)] for c in classes]
    return out


# --- in the child process ---------------------------------------------------------------------

_models: OrderedDict[str, Any] = OrderedDict()
#: the MC-dropout twin of each cached model (``_dropout_sampler``), by sha256.
_samplers: OrderedDict[str, Any] = OrderedDict()


def _child_init() -> None:
    """Runs once in the spawned child: register the custom Keras objects, quiet TF logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import search_spaces.keras_objects  # noqa: F401  (registers custom layers/schedules)
    except ImportError:  # pragma: no cover  (only plain Keras objects can be loaded then)
        log.warning("search_spaces.keras_objects is unavailable; custom layers will not load")


def _child_warm() -> None:
    """Import Keras (and TensorFlow) now: the child's cold start, paid before any request."""
    import keras  # noqa: F401


def _load(sha256: str, content: bytes) -> Any:
    import keras

    with tempfile.TemporaryDirectory(prefix="hpsearch-predict-") as tmp:
        path = os.path.join(tmp, f"{sha256}.keras")
        with open(path, "wb") as handle:
            handle.write(content)
        model = keras.saving.load_model(path, compile=False)
    _models[sha256] = model
    while len(_models) > CHILD_CACHE_SIZE:
        _models.popitem(last=False)
    return model


def _dropout_sampler(model: Any) -> Any:
    """``model`` with only its dropout layers sampling (MC dropout): the same layers and weights,
    each dropout layer wrapped to run as in training, every other layer (batch normalization
    above all, which would otherwise normalize a batch by its own statistics) in inference."""
    import keras

    dropouts = (
        keras.layers.Dropout,
        keras.layers.AlphaDropout,
        keras.layers.GaussianDropout,
        keras.layers.SpatialDropout1D,
        keras.layers.SpatialDropout2D,
        keras.layers.SpatialDropout3D,
    )

    class AlwaysSampling(keras.layers.Layer):
        def __init__(self, inner: Any) -> None:
            super().__init__(name=f"{inner.name}_sampling")
            self.inner = inner

        def call(self, inputs: Any, training: Any = None) -> Any:
            return self.inner(inputs, training=True)

    return keras.models.clone_model(
        model,
        clone_function=lambda layer: (
            AlwaysSampling(layer) if isinstance(layer, dropouts) else layer
        ),
    )


def _child_predict(
    sha256: str, content: bytes | None, x: np.ndarray, mc_samples: int
) -> tuple[np.ndarray, np.ndarray | None] | str:
    """Mean (and std under MC dropout) of the model's outputs; ``_NEED_MODEL`` if not cached."""
    model = _models.get(sha256)
    if model is None:
        if content is None:
            return _NEED_MODEL
        model = _load(sha256, content)
    else:
        _models.move_to_end(sha256)
    if mc_samples <= 0:
        return np.asarray(model.predict(x, batch_size=BATCH_SIZE, verbose=0)), None
    import keras

    sampler = _samplers.get(sha256)
    if sampler is None:
        sampler = _samplers[sha256] = _dropout_sampler(model)
        while len(_samplers) > CHILD_CACHE_SIZE:
            _samplers.popitem(last=False)
    chunks_mean, chunks_std = [], []
    for start in range(0, len(x), BATCH_SIZE):
        batch = x[start : start + BATCH_SIZE]
        samples = np.stack(
            [keras.ops.convert_to_numpy(sampler(batch, training=False)) for _ in range(mc_samples)]
        )
        chunks_mean.append(samples.mean(axis=0))
        chunks_std.append(samples.std(axis=0))
    return np.concatenate(chunks_mean), np.concatenate(chunks_std)


# --- the parent's handle on the child -----------------------------------------------------------


class Predictor:
    """Runs predictions in one lazily spawned process; restarts it after a crash or timeout."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.child = SpawnedChild(initializer=_child_init)

    def _call(self, sha256: str, content: bytes | None, x: np.ndarray, mc_samples: int) -> Any:
        try:
            return self.child.call(
                _child_predict, sha256, content, x, mc_samples, timeout_s=self.timeout_s
            )
        except FutureTimeout as exc:
            raise PredictionTimeoutError(
                f"prediction took longer than {self.timeout_s:g} s (predict_timeout_s)"
            ) from exc
        except BrokenProcessPool as exc:
            raise PredictionFailedError("the prediction process died; try again") from exc
        except Exception as exc:
            raise PredictionFailedError(f"prediction failed: {type(exc).__name__}: {exc}") from exc

    def predict(
        self,
        sha256: str,
        load_content: Callable[[], bytes],
        x: np.ndarray,
        mc_samples: int = 0,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the model ``sha256`` on ``x``; its bytes are fetched (``load_content``) only when
        the child does not have it cached yet."""
        result = self._call(sha256, None, x, mc_samples)
        if isinstance(result, str) and result == _NEED_MODEL:
            result = self._call(sha256, load_content(), x, mc_samples)
        return result

    def warm(self) -> None:
        """Start the prediction process and its Keras import in the background (returns at
        once); a prediction sent meanwhile waits for it, none pays it twice."""
        self.child.submit(_child_warm)

    def shutdown(self) -> None:
        """Stop the child process (app shutdown) and wait for it."""
        self.child.shutdown()
