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

The summary also describes the normalised features (``feature_stats``) and a regression
target's distribution (``target_histogram``): see ``api.uploads.stats``.
"""

from __future__ import annotations

import numpy as np

from api.uploads.common import FORMATS, Limits, ParsedDataset, UploadError, target_summary
from api.uploads.npz import read_npz
from api.uploads.stats import dataset_statistics
from api.uploads.tables import read_csv, read_parquet
from search_spaces.datasets import Task

__all__ = ["Limits", "ParsedDataset", "UploadError", "format_from_filename", "parse_upload"]


def format_from_filename(filename: str | None) -> str | None:
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    return {"csv": "csv", "npz": "npz", "parquet": "parquet", "pq": "parquet"}.get(suffix)


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
        x, y, task_, inferred, labels, names, summary = read_npz(data, task, limits)
    else:
        if not target:
            raise UploadError("target", f"a {fmt} upload needs the name of its target column")
        reader = read_csv if fmt == "csv" else read_parquet
        x, y, task_, inferred, labels, names, summary = reader(data, target, task, limits)
    summary = {
        "rows": len(y),
        "features": len(names),
        **summary,
        "inferred_task": str(inferred),
        "task": str(task_),
        **target_summary(y, labels),
        # per-feature min/max/mean/std and a regression target's histogram (api.uploads.stats)
        **dataset_statistics(x, y, names, labels),
    }
    return ParsedDataset(
        x=np.ascontiguousarray(x),
        y=np.ascontiguousarray(y),
        task=task_,
        class_labels=labels,
        feature_names=names,
        summary=summary,
    )
