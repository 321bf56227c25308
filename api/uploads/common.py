"""What every reader of an uploaded file shares: its errors and limits, the parsed result, and how
a target column becomes the task and its classes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces.datasets import Task

FORMATS = ("csv", "npz", "parquet")
#: an integer target with at most this many distinct values is inferred as classes.
MAX_INFERRED_CLASSES = 20
#: a classification target may have at most this many classes.
MAX_CLASSES = 1000
#: a dataset needs at least this many rows (after dropping missing targets) to be split.
MIN_ROWS = 10
#: rows x features of the normalised matrix (float32: 200 MB) at most.
MAX_CELLS = 50_000_000
MISSING = "<missing>"
#: strings a CSV cell may hold to mean "missing".
NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"]


class UploadError(Exception):
    """The file cannot become a dataset; ``field`` names the form field or the file's part."""

    def __init__(
        self, field: str, message: str, limit: int | None = None, kind: str = "invalid_file"
    ) -> None:
        super().__init__(message)
        self.field, self.message, self.limit, self.kind = field, message, limit, kind


@dataclass(frozen=True)
class ParsedDataset:
    x: np.ndarray  # float32, (rows, *input_shape)
    y: np.ndarray  # int32 class indices, or float32 values
    task: Task
    class_labels: list[str] | None
    feature_names: list[str]
    summary: dict[str, Any]

    @property
    def input_shape(self) -> list[int]:
        return [int(d) for d in self.x.shape[1:]]

    @property
    def n_classes(self) -> int:
        return len(self.class_labels) if self.class_labels is not None else 1

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, x=self.x, y=self.y)
        return buf.getvalue()


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_columns: int


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def encode_target(
    values: np.ndarray, numeric: bool, requested: Task | None
) -> tuple[np.ndarray, Task, Task, list[str] | None]:
    """Encode the target: (y, task, inferred task, class labels)."""
    uniques = np.unique(values)
    if len(uniques) < 2:  # nothing to learn, whatever the task
        raise UploadError(
            "target",
            f"the target has {len(uniques)} distinct value(s); a model needs at least 2 to "
            "learn from",
        )
    integral = numeric and bool(np.all(np.mod(values.astype(np.float64), 1) == 0))
    if not numeric or (integral and len(uniques) <= MAX_INFERRED_CLASSES):
        inferred = Task.BINARY if len(uniques) == 2 else Task.MULTICLASS
    else:
        inferred = Task.REGRESSION
    task = requested or inferred
    if task is Task.REGRESSION:
        if not numeric:
            raise UploadError(
                "task",
                "the target holds text values; regression needs numbers",
                kind="invalid_task",
            )
        return values.astype(np.float32), task, inferred, None
    if task is Task.BINARY and len(uniques) != 2:
        raise UploadError(
            "task",
            f"binary needs exactly 2 target values, found {len(uniques)}",
            kind="invalid_task",
        )
    if len(uniques) > MAX_CLASSES:
        raise UploadError(
            "target", f"{len(uniques)} classes, over the limit of {MAX_CLASSES}", MAX_CLASSES
        )
    y = np.searchsorted(uniques, values).astype(np.int32)
    return y, task, inferred, [_label(u) for u in uniques]


def target_summary(y: np.ndarray, labels: list[str] | None) -> dict[str, Any]:
    if labels is None:
        return {
            "class_balance": None,
            "target_stats": {
                "min": float(y.min()),
                "max": float(y.max()),
                "mean": float(y.mean()),
                "std": float(y.std()),
            },
        }
    counts = np.bincount(y, minlength=len(labels))
    return {
        "class_balance": {label: int(c) for label, c in zip(labels, counts, strict=True)},
        "target_stats": None,
    }


def check_rows(rows: int, limits: Limits) -> None:
    if rows > limits.max_rows:
        raise UploadError(
            "file", f"more than {limits.max_rows} rows", limits.max_rows, "too_many_rows"
        )


def check_features(n: int, rows: int, limits: Limits, what: str = "features") -> None:
    if n > limits.max_columns:
        raise UploadError(
            "file",
            f"{n} {what}, over the limit of {limits.max_columns}",
            limits.max_columns,
            "too_many_columns",
        )
    if n * rows > MAX_CELLS:
        raise UploadError(
            "file",
            f"{rows} rows x {n} features is over {MAX_CELLS:,} values",
            MAX_CELLS,
            "too_large",
        )
