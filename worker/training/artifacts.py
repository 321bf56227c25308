"""Serialise a trained model into a ``ModelArtifact`` payload (Keras's native ``.keras`` format)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import keras

from db.repositories.artifacts import ArtifactPayload
from search_spaces.schema import JobSpec
from worker.training.datasets import LoadedDataset


def signature(spec: JobSpec, data: LoadedDataset, score: float) -> dict[str, Any]:
    """What a client needs to call predict on the stored model."""
    info = spec.dataset.info
    return {
        "task": str(info.task),
        "input_shape": list(info.input_shape),
        "n_outputs": info.n_outputs,
        "class_labels": data.info.get("class_labels"),
        # uploaded datasets: the encoded feature columns (one-hot "column=value" included).
        "feature_names": data.info.get("feature_names"),
        "objective": spec.objective,
        "direction": spec.direction,
        "score": score,
        "keras_version": keras.__version__,
    }


def model_payload(model: keras.Model, meta: dict[str, Any]) -> ArtifactPayload:
    """``model.save`` to a temporary ``.keras`` file, read back with its sha256."""
    with tempfile.TemporaryDirectory(prefix="hpsearch-model-") as tmp:
        path = Path(tmp) / "m.keras"
        model.save(path)
        content = path.read_bytes()
    return ArtifactPayload(
        content=content, sha256=hashlib.sha256(content).hexdigest(), signature=meta
    )
