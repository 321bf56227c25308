"""Prediction rows given as objects keyed by an uploaded dataset's column names, encoded the way
the upload was: numeric columns as they are (a missing one takes the median imputed at upload,
if the column had gaps), text columns one-hot over the categories seen at upload (a missing one
is the ``<missing>`` category, if the upload had it). Anything else is a 422 naming the row and
the column."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.errors import InputValidationError
from api.uploads.common import MISSING

#: categories quoted in an error message at most.
SHOWN_CATEGORIES = 10


@dataclass(frozen=True)
class Column:
    """A column of the uploaded table: numeric (``categories`` None) or one-hot text."""

    name: str
    categories: tuple[str, ...] | None = None
    median: float | None = None


def columns_of(
    feature_names: Sequence[str],
    categorical: Mapping[str, Sequence[str]],
    medians: Mapping[str, float],
) -> list[Column]:
    """The upload's columns, in the order of its encoded features."""
    columns: list[Column] = []
    seen: set[str] = set()
    expanded = {f"{c}={v}": c for c, values in categorical.items() for v in values}
    for feature in feature_names:
        source = expanded.get(feature)
        if source is not None:
            if source not in seen:
                seen.add(source)
                columns.append(Column(source, tuple(categorical[source])))
        else:
            columns.append(Column(feature, median=medians.get(feature)))
    return columns


def _numeric(column: Column, value: Any, where: str) -> float:
    if value is None:
        if column.median is None:
            raise InputValidationError(where, f"column {column.name!r} needs a number")
        return column.median
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputValidationError(where, f"column {column.name!r} is numeric; got {value!r}")
    return float(value)


def _one_hot(column: Column, value: Any, where: str) -> list[float]:
    categories = column.categories or ()
    text = MISSING if value is None else value
    if not isinstance(text, str) or text not in categories:
        shown = ", ".join(repr(c) for c in categories[:SHOWN_CATEGORIES])
        more = " ..." if len(categories) > SHOWN_CATEGORIES else ""
        raise InputValidationError(
            where,
            f"column {column.name!r} takes one of the upload's categories: {shown}{more}; "
            f"got {value!r}",
        )
    return [1.0 if text == c else 0.0 for c in categories]


def encode_rows(rows: Sequence[Any], columns: Sequence[Column]) -> np.ndarray:
    """Object rows -> the float32 feature matrix the model was trained on."""
    names = {c.name for c in columns}
    encoded: list[list[float]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputValidationError(f"rows.{i}", "rows are all objects or all arrays")
        unknown = sorted(set(row) - names)
        if unknown:
            raise InputValidationError(
                f"rows.{i}.{unknown[0][:100]}",
                f"no column {unknown[0][:100]!r} in the uploaded dataset",
            )
        values: list[float] = []
        for column in columns:
            where = f"rows.{i}.{column.name}"
            value = row.get(column.name)
            if column.categories is None:
                values.append(_numeric(column, value, where))
            else:
                values.extend(_one_hot(column, value, where))
        encoded.append(values)
    return np.asarray(encoded, dtype=np.float32)
