"""Per-feature statistics of a normalised dataset, for a dashboard to show outliers.

Computed at upload time (into the upload's ``summary``), and again from the stored arrays for an
upload older than these keys (``api.services.datasets.dataset_summary_with_stats``):

- ``feature_stats``: ``{"name", "min", "max", "mean", "std"}`` per feature of ``x`` (an ``.npz``
  upload's inputs flattened in C order, as ``feature_names`` lists them), over every row, in
  float64, ``std`` the population one (``ddof=0``, as ``target_stats``), at most the first
  ``MAX_FEATURE_STATS`` features; ``feature_stats_truncated`` says whether there were more;
- ``target_histogram``: a regression target's ``{"edges": [21 floats], "counts": [20 ints]}``
  (``numpy.histogram``, ``TARGET_BINS`` equal bins over its range); null for classes.

Everything is plain JSON: a value that is not finite (there should be none: missing values are
imputed and infinite ones refused at upload) is ignored, and a statistic with no finite value to
stand on is null.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

#: features described at most (a dashboard shows a few; 200 keeps the summary small).
MAX_FEATURE_STATS = 200
#: bins of a regression target's histogram.
TARGET_BINS = 20
#: features computed at once: bounds the float64 copy to rows x this many values.
_CHUNK = 32
STAT_KEYS = ("feature_stats", "feature_stats_truncated", "target_histogram")


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _feature_names(feature_names: Sequence[Any] | None, count: int) -> list[str]:
    if feature_names is not None and len(feature_names) >= count:
        return [str(name) for name in feature_names[:count]]
    return [f"x{i}" for i in range(count)]


def _column_stats(block: np.ndarray) -> list[tuple[float | None, ...]]:
    """(min, max, mean, std) of each column of a float64 block, its non-finite values ignored."""
    if not len(block):
        return [(None, None, None, None)] * block.shape[1]
    block[~np.isfinite(block)] = np.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a column without a finite value
        found = (
            np.nanmin(block, axis=0),
            np.nanmax(block, axis=0),
            np.nanmean(block, axis=0),
            np.nanstd(block, axis=0),
        )
    return [tuple(_finite(v) for v in column) for column in zip(*found, strict=True)]


def feature_statistics(
    x: np.ndarray, feature_names: Sequence[Any] | None, limit: int = MAX_FEATURE_STATS
) -> tuple[list[dict[str, Any]], bool]:
    """``(stats, truncated)``: min, max, mean and std of the first ``limit`` features of ``x``
    (rows first, the rest flattened), named by ``feature_names`` (``x<i>`` without them)."""
    x = np.atleast_1d(np.asarray(x))
    # one value per row is a single feature; (rows, *shape) is flattened (C order)
    width = int(np.prod(x.shape[1:], dtype=np.int64)) if x.ndim > 1 else 1
    flat = x.reshape(x.shape[0], width)
    count = min(flat.shape[1], limit)
    names = _feature_names(feature_names, count)
    stats: list[dict[str, Any]] = []
    for start in range(0, count, _CHUNK):
        block = np.array(flat[:, start : min(count, start + _CHUNK)], dtype=np.float64)
        for offset, (low, high, mean, std) in enumerate(_column_stats(block)):
            name = names[start + offset]
            stats.append({"name": name, "min": low, "max": high, "mean": mean, "std": std})
    return stats, flat.shape[1] > count


def target_histogram(y: np.ndarray, bins: int = TARGET_BINS) -> dict[str, list[Any]] | None:
    """``{"edges": [bins + 1 floats], "counts": [bins ints]}`` of ``y``'s finite values (None
    if it has none)."""
    values = np.asarray(y, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    counts, edges = np.histogram(values, bins=bins)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def dataset_statistics(
    x: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[Any] | None,
    labels: Sequence[Any] | None,
) -> dict[str, Any]:
    """The summary keys of ``STAT_KEYS`` for features ``x`` and target ``y``: ``labels`` is
    None for a regression target (it gets a histogram), the class labels otherwise."""
    stats, truncated = feature_statistics(x, feature_names)
    return {
        "feature_stats": stats,
        "feature_stats_truncated": truncated,
        "target_histogram": target_histogram(y) if labels is None else None,
    }
