"""NPZ uploads: ``np.load(allow_pickle=False)``, with every array's header checked before any
data is read."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np

from api.uploads.common import (
    MIN_ROWS,
    Limits,
    UploadError,
    check_features,
    check_rows,
    encode_target,
)
from search_spaces.datasets import Task


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


def read_npz(data: bytes, requested: Task | None, limits: Limits) -> tuple:
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
    check_rows(x_shape[0], limits)
    n_features = math.prod(x_shape[1:])
    check_features(n_features, x_shape[0], limits)
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
    y_enc, task, inferred, labels = encode_target(y, True, requested)
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
