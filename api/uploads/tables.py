"""CSV (pandas, text only) and Parquet (pyarrow) uploads: columns to numeric features."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np

from api.uploads.common import (
    MIN_ROWS,
    MISSING,
    NA_VALUES,
    Limits,
    UploadError,
    check_features,
    check_rows,
    encode_target,
)
from search_spaces.datasets import Task


def _from_table(
    df: Any, target: str, requested: Task | None, limits: Limits, numeric_cols: set[str]
) -> tuple[np.ndarray, np.ndarray, Task, Task, list[str] | None, list[str], dict[str, Any]]:
    """A pandas frame -> features and target. ``numeric_cols``: columns typed numeric already
    (Parquet); the other object columns are numeric when every present value parses."""
    import pandas as pd

    source_rows = len(df)
    missing = {str(c): int(n) for c, n in df.isna().sum().items() if n}
    tcol = df[target]
    keep = ~tcol.isna().to_numpy()
    df = df.loc[keep].reset_index(drop=True)
    rows = len(df)
    if rows < MIN_ROWS:
        raise UploadError(
            "file", f"{rows} rows with a target value; at least {MIN_ROWS} are needed", MIN_ROWS
        )

    def as_numeric(col: Any, name: str) -> np.ndarray | None:
        if name in numeric_cols:
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            parsed = pd.to_numeric(col, errors="coerce")
            if bool((parsed.isna() & col.notna()).any()):
                return None
            values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            row = int(np.flatnonzero(np.isinf(values))[0])
            raise UploadError("file", f"column {name!r}, data row {row + 1}: infinite value")
        return values

    target_values = as_numeric(df[target], target)
    if target_values is None:
        y, task, inferred, labels = encode_target(
            df[target].astype(str).to_numpy(), False, requested
        )
    else:
        y, task, inferred, labels = encode_target(target_values, True, requested)

    blocks: list[np.ndarray] = []
    names: list[str] = []
    imputed: dict[str, float] = {}
    categorical: dict[str, list[str]] = {}
    for column in df.columns:
        name = str(column)
        if name == target:
            continue
        values = as_numeric(df[column], name)
        if values is not None:
            gaps = np.isnan(values)
            if gaps.any():
                fill = float(np.median(values[~gaps])) if (~gaps).any() else 0.0
                values = np.where(gaps, fill, values)
                imputed[name] = fill
            blocks.append(values[:, None])
            names.append(name)
        else:
            text = df[column].astype("string").fillna(MISSING).to_numpy(dtype=object)
            cats = sorted(set(text))
            categorical[name] = cats
            check_features(len(names) + len(cats), rows, limits)
            blocks.append(
                (text[:, None] == np.array(cats, dtype=object)[None, :]).astype(np.float64)
            )
            names.extend(f"{name}={c}" for c in cats)
        check_features(len(names), rows, limits)
    if not names:
        raise UploadError("file", "no feature columns besides the target")
    x = np.hstack(blocks).astype(np.float32)
    summary = {
        "source_rows": source_rows,
        "rows_dropped_missing_target": source_rows - rows,
        "columns": len(df.columns) - 1,
        "target": target,
        "missing_values": missing,
        "missing_total": sum(missing.values()),
        "imputed_medians": imputed,
        "categorical_columns": categorical,
    }
    return x, y, task, inferred, labels, names, summary


def read_csv(data: bytes, target: str, requested: Task | None, limits: Limits) -> tuple:
    import pandas as pd

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UploadError("file", f"line {line}: not UTF-8 text (a CSV file was expected)") from exc
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise UploadError("file", f"line {line}: NUL byte (a CSV file was expected)")
    options: dict[str, Any] = {
        "dtype": str,
        "keep_default_na": False,
        "na_values": NA_VALUES,
        "engine": "c",
        "on_bad_lines": "error",
    }
    try:
        header = pd.read_csv(io.StringIO(text), nrows=0, **options)
        check_features(len(header.columns), 0, limits, "columns")
        if target not in header.columns:
            shown = ", ".join(map(str, list(header.columns)[:20]))
            raise UploadError("target", f"no column {target!r} in the header (columns: {shown})")
        df = pd.read_csv(io.StringIO(text), nrows=limits.max_rows + 1, **options)
    except pd.errors.EmptyDataError as exc:
        raise UploadError("file", "the CSV file is empty") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        message = re.sub(r"^Error tokenizing data\. C error: ", "", str(exc)).strip()
        raise UploadError("file", f"malformed CSV: {message}") from exc
    check_rows(len(df), limits)
    return _from_table(df, target, requested, limits, set())


def read_parquet(data: bytes, target: str, requested: Task | None, limits: Limits) -> tuple:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        meta = pf.metadata
        check_rows(meta.num_rows, limits)
        check_features(meta.num_columns, 0, limits, "columns")
        schema = pf.schema_arrow
        if target not in schema.names:
            shown = ", ".join(schema.names[:20])
            raise UploadError("target", f"no column {target!r} (columns: {shown})")
        numeric: set[str] = set()
        for field in schema:
            t = field.type
            if pa.types.is_dictionary(t):
                t = t.value_type
            if pa.types.is_integer(t) or pa.types.is_floating(t):
                numeric.add(field.name)
            elif not (
                pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            ):
                raise UploadError(
                    "file",
                    f"column {field.name!r} has type {field.type}; numbers, booleans and text are supported",
                )
        df = pf.read().to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise UploadError("file", f"malformed Parquet file: {exc}") from exc
    if len(set(map(str, df.columns))) != len(df.columns):
        raise UploadError("file", "duplicate column names")
    return _from_table(df, target, requested, limits, numeric)
