"""Parse an uploaded dataset file into numeric arrays, with safe readers only.

CSV (pandas, text only), NPZ (``np.load(allow_pickle=False)``, headers checked before any data is
read) and Parquet (pyarrow). Nothing is ever unpickled and no model file is ever loaded.

Normalisation (documented in the README, "Uploaded datasets"):

- a numeric column (every non-missing value parses as a number) is a feature as it is; its missing
  values become the column's median over the file (0 when the whole column is missing);
- any other column is categorical: one-hot encoded, one feature ``column=value`` per distinct
  value (sorted), a missing value being a category of its own, ``column=<missing>``;
- rows whose target is missing are dropped (and counted); infinite values are refused;
- the task is inferred from the target unless the upload names one: text or boolean values, or
  integer values with at most ``MAX_INFERRED_CLASSES`` distinct ones, are classes (binary for
  two, multiclass for more); anything else is regression.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
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


def format_from_filename(filename: str | None) -> str | None:
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    return {"csv": "csv", "npz": "npz", "parquet": "parquet", "pq": "parquet"}.get(suffix)


# --- the target and the task -----------------------------------------------------------------


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _target(
    values: np.ndarray, numeric: bool, requested: Task | None
) -> tuple[np.ndarray, Task, Task, list[str] | None]:
    """Encode the target: (y, task, inferred task, class labels)."""
    uniques = np.unique(values)
    integral = numeric and bool(np.all(np.mod(values.astype(np.float64), 1) == 0))
    if not numeric or (integral and len(uniques) <= MAX_INFERRED_CLASSES):
        inferred = Task.BINARY if len(uniques) == 2 else Task.MULTICLASS
        if len(uniques) < 2:
            inferred = Task.REGRESSION if numeric else inferred
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
    if len(uniques) < 2:
        raise UploadError(
            "target", f"the target has {len(uniques)} distinct value(s); classes need at least 2"
        )
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


def _target_summary(y: np.ndarray, labels: list[str] | None) -> dict[str, Any]:
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


def _check_rows(rows: int, limits: Limits) -> None:
    if rows > limits.max_rows:
        raise UploadError(
            "file", f"more than {limits.max_rows} rows", limits.max_rows, "too_many_rows"
        )


def _check_features(n: int, rows: int, limits: Limits, what: str = "features") -> None:
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


# --- tables (CSV and Parquet) ------------------------------------------------------------------


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
        y, task, inferred, labels = _target(df[target].astype(str).to_numpy(), False, requested)
    else:
        y, task, inferred, labels = _target(target_values, True, requested)

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
            _check_features(len(names) + len(cats), rows, limits)
            blocks.append(
                (text[:, None] == np.array(cats, dtype=object)[None, :]).astype(np.float64)
            )
            names.extend(f"{name}={c}" for c in cats)
        _check_features(len(names), rows, limits)
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


def _read_csv(data: bytes, target: str, requested: Task | None, limits: Limits) -> tuple:
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
        _check_features(len(header.columns), 0, limits, "columns")
        if target not in header.columns:
            shown = ", ".join(map(str, list(header.columns)[:20]))
            raise UploadError("target", f"no column {target!r} in the header (columns: {shown})")
        df = pd.read_csv(io.StringIO(text), nrows=limits.max_rows + 1, **options)
    except pd.errors.EmptyDataError as exc:
        raise UploadError("file", "the CSV file is empty") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        message = re.sub(r"^Error tokenizing data\. C error: ", "", str(exc)).strip()
        raise UploadError("file", f"malformed CSV: {message}") from exc
    _check_rows(len(df), limits)
    return _from_table(df, target, requested, limits, set())


def _read_parquet(data: bytes, target: str, requested: Task | None, limits: Limits) -> tuple:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        meta = pf.metadata
        _check_rows(meta.num_rows, limits)
        _check_features(meta.num_columns, 0, limits, "columns")
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


# --- NPZ -----------------------------------------------------------------------------------------


def _npy_header(archive: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``key.npy`` from its header, before any data is read."""
    with archive.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        reader = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if reader is None:
            raise UploadError("file", f"array {key}: unsupported .npy version {version}")
        shape, _fortran, dtype = reader(f)
    return shape, dtype


def _read_npz(data: bytes, requested: Task | None, limits: Limits) -> tuple:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        for key in ("x", "y"):
            if f"{key}.npy" not in names:
                raise UploadError(
                    "file", f"the .npz has no array {key!r} (arrays x and y are needed)"
                )
        x_shape, x_dtype = _npy_header(archive, "x")
        y_shape, y_dtype = _npy_header(archive, "y")
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise UploadError("file", f"not a valid .npz archive: {exc}") from exc
    for key, dtype in (("x", x_dtype), ("y", y_dtype)):
        if dtype.kind not in "biuf":
            raise UploadError(
                "file",
                f"array {key} has dtype {dtype}; only numeric arrays are accepted (object arrays are refused, never unpickled)",
            )
    if len(x_shape) < 2:
        raise UploadError(
            "file", f"x has shape {x_shape}; it needs one row per sample (rows, features...)"
        )
    if (
        not (len(y_shape) == 1 or (len(y_shape) == 2 and y_shape[1] == 1))
        or y_shape[0] != x_shape[0]
    ):
        raise UploadError(
            "file", f"y has shape {y_shape}; it needs one value per row of x {x_shape}"
        )
    _check_rows(x_shape[0], limits)
    n_features = math.prod(x_shape[1:])
    _check_features(n_features, x_shape[0], limits)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            x = np.asarray(arrays["x"], dtype=np.float64)
            y = np.asarray(arrays["y"], dtype=np.float64).reshape(-1)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UploadError("file", f"not a valid .npz archive: {exc}") from exc
    if np.isinf(x).any() or np.isinf(y).any():
        raise UploadError("file", "infinite values are refused")
    keep = ~np.isnan(y)
    source_rows = len(y)
    x, y = x[keep], y[keep]
    if len(y) < MIN_ROWS:
        raise UploadError(
            "file", f"{len(y)} rows with a target value; at least {MIN_ROWS} are needed", MIN_ROWS
        )
    flat = x.reshape(len(x), -1)
    gaps = np.isnan(flat)
    feature_names = [f"x{i}" for i in range(n_features)]
    missing = {feature_names[i]: int(n) for i, n in enumerate(gaps.sum(axis=0)) if n}
    imputed: dict[str, float] = {}
    for i in np.flatnonzero(gaps.any(axis=0)):
        present = flat[~gaps[:, i], i]
        fill = float(np.median(present)) if len(present) else 0.0
        flat[gaps[:, i], i] = fill
        imputed[feature_names[i]] = fill
    if source_rows - len(y):
        missing["y"] = source_rows - len(y)
    y_enc, task, inferred, labels = _target(y, True, requested)
    summary = {
        "source_rows": source_rows,
        "rows_dropped_missing_target": source_rows - len(y),
        "columns": n_features,
        "target": "y",
        "missing_values": missing,
        "missing_total": sum(missing.values()),
        "imputed_medians": imputed,
        "categorical_columns": {},
    }
    return (
        flat.reshape(x.shape).astype(np.float32),
        y_enc,
        task,
        inferred,
        labels,
        feature_names,
        summary,
    )


def parse_upload(
    data: bytes, fmt: str, target: str | None, task: Task | None, limits: Limits
) -> ParsedDataset:
    """Parse and normalise one uploaded file; ``UploadError`` names what is wrong."""
    if fmt not in FORMATS:
        raise UploadError("format", f"unsupported format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not data:
        raise UploadError("file", "the file is empty")
    if fmt == "npz":
        if target not in (None, "", "y"):
            raise UploadError("target", "an .npz upload's target is its array y")
        x, y, task_, inferred, labels, names, summary = _read_npz(data, task, limits)
    else:
        if not target:
            raise UploadError("target", f"a {fmt} upload needs the name of its target column")
        reader = _read_csv if fmt == "csv" else _read_parquet
        x, y, task_, inferred, labels, names, summary = reader(data, target, task, limits)
    summary = {
        "rows": len(y),
        "features": len(names),
        **summary,
        "inferred_task": str(inferred),
        "task": str(task_),
        **_target_summary(y, labels),
    }
    return ParsedDataset(
        x=np.ascontiguousarray(x),
        y=np.ascontiguousarray(y),
        task=task_,
        class_labels=labels,
        feature_names=names,
        summary=summary,
    )
