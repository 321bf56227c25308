"""The catalogue of built-in datasets: pure metadata (shapes, task), no loading and no I/O.

Loading lives in ``worker/training/datasets.py``; the API uses this catalogue to validate specs and to
bound the size of the models a spec allows without importing TensorFlow.
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass
from pathlib import Path

from search_spaces.direction import Direction


class Task(enum.StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


def keras_cache_dir() -> Path:
    """Where Keras's loaders keep downloaded datasets (``$KERAS_HOME`` or ``~/.keras``)."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "datasets"


#: a spec names an uploaded dataset ``upload:<id>``.
UPLOAD_PREFIX = "upload:"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    source: str  # "sklearn" | "keras" | "upload"
    task: Task
    #: shape of one input row before any flattening, e.g. (64,) or (28, 28).
    input_shape: tuple[int, ...]
    #: number of classes (1 for regression).
    n_classes: int
    #: rows available for training + validation (Keras loaders: the train split).
    rows: int
    description: str
    #: files Keras's loader keeps under ~/.keras/datasets (empty: ships inside a package).
    cache_files: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        return math.prod(self.input_shape)

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task is Task.MULTICLASS else 1


_FASHION = tuple(
    f"fashion-mnist/{f}"
    for f in (
        "train-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
    )
)

BUILTIN_DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("digits", "sklearn", Task.MULTICLASS, (64,), 10, 1797, "8x8 handwritten digits (scikit-learn)"),
        DatasetInfo("iris", "sklearn", Task.MULTICLASS, (4,), 3, 150, "Iris flowers (scikit-learn)"),
        DatasetInfo("wine", "sklearn", Task.MULTICLASS, (13,), 3, 178, "Wine cultivars (scikit-learn)"),
        DatasetInfo("breast_cancer", "sklearn", Task.BINARY, (30,), 2, 569, "Wisconsin breast cancer (scikit-learn)"),
        DatasetInfo("diabetes", "sklearn", Task.REGRESSION, (10,), 1, 442, "Diabetes progression (scikit-learn)"),
        DatasetInfo("mnist", "keras", Task.MULTICLASS, (28, 28), 10, 60000, "MNIST digits (Keras loader)", ("mnist.npz",)),
        DatasetInfo("fashion_mnist", "keras", Task.MULTICLASS, (28, 28), 10, 60000, "Fashion-MNIST (Keras loader)", _FASHION),
        DatasetInfo("california_housing", "keras", Task.REGRESSION, (8,), 1, 16512, "California housing, large version (Keras loader)", ("california_housing.npz",)),
        DatasetInfo("boston_housing", "keras", Task.REGRESSION, (13,), 1, 404, "Boston housing (Keras loader)", ("boston_housing.npz",)),
    )
}  # fmt: skip


def upload_info(
    upload_id: str, task: str, input_shape: list[int], n_classes: int, rows: int, label: str
) -> DatasetInfo:
    """The ``DatasetInfo`` of an uploaded dataset, from its stored metadata."""
    return DatasetInfo(
        name=f"{UPLOAD_PREFIX}{upload_id}",
        source="upload",
        task=Task(task),
        input_shape=tuple(input_shape),
        n_classes=n_classes,
        rows=rows,
        description=label,
    )


def get_dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry for ``name``; ``KeyError`` if there is none."""
    return BUILTIN_DATASETS[name]


#: metrics each task logs (Keras names); an objective is one of these, optionally ``val_``-prefixed.
TASK_METRICS: dict[Task, tuple[str, ...]] = {
    Task.BINARY: ("loss", "accuracy", "auc"),
    Task.MULTICLASS: ("loss", "accuracy"),
    Task.REGRESSION: ("loss", "mae", "mse"),
}


def objective_names(task: Task) -> list[str]:
    """Every metric name a search on ``task`` may optimise or monitor."""
    names = TASK_METRICS[task]
    return [f"val_{n}" for n in names] + list(names)


def default_objective(task: Task) -> str:
    return "val_loss" if task is Task.REGRESSION else "val_accuracy"


def infer_direction(objective: str) -> Direction:
    """``max`` for accuracy-like metrics, ``min`` for losses and errors."""
    return Direction.of_objective(objective)
