"""A job's trials as one CSV table (``GET /jobs/{job_id}/trials.csv``).

One row per trial, by number. The columns: ``LEADING_COLUMNS``, one per hyperparameter (the union
of the trials' names, in natural order: ``units_2`` before ``units_10``), one per metric of the
best epoch (``metric:<name>``, sorted), then ``TRAILING_COLUMNS``. A hyperparameter whose name
would collide with another column (or starts with ``metric:`` or ``hp:``) is written
``hp:<name>``.

Cells: empty for null, ``true``/``false``, integers as they are, floats at full precision
(``repr``: ``nan``, ``inf``), times in ISO 8601 UTC, anything else (a list) as JSON. A text cell
that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) gets a leading ``'`` (OWASP's CSV injection advice); numbers never do.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from db.models import Trial
from db.values import as_utc

LEADING_COLUMNS = ("number", "status", "score", "best_epoch", "epochs_run")
TRAILING_COLUMNS = (
    "parameter_count",
    "proposed_at",
    "started_at",
    "finished_at",
    "duration_s",
    "attempts",
    "failure_reason",
)
METRIC_PREFIX = "metric:"
HYPERPARAMETER_PREFIX = "hp:"
MEDIA_TYPE = "text/csv"
#: the first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: what the OpenAPI document shows as the 200 answer.
EXAMPLE = (
    "number,status,score,best_epoch,epochs_run,activation,depth,learning_rate,"
    "metric:loss,metric:val_accuracy,metric:val_loss,parameter_count,proposed_at,started_at,"
    "finished_at,duration_s,attempts,failure_reason\r\n"
    "0,completed,0.9611,7,8,relu,2,0.0031,0.102,0.9611,0.1307,4810,"
    "2025-01-01T12:00:00+00:00,2025-01-01T12:00:01+00:00,2025-01-01T12:00:09+00:00,8.2,1,\r\n"
    "1,failed,,,0,selu,1,0.0507,,,,,2025-01-01T12:00:00+00:00,2025-01-01T12:00:02+00:00,"
    "2025-01-01T12:00:03+00:00,1.1,1,ResourceExhaustedError: out of memory\r\n"
)


def _natural(name: str) -> list[Any]:
    """Sort key: digit runs compare as numbers (``units_2`` < ``units_10``)."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)
    ]


def hyperparameter_column(name: str) -> str:
    """The column of hyperparameter ``name``: its name, or ``hp:<name>`` where that would
    collide with another column."""
    taken = name in LEADING_COLUMNS or name in TRAILING_COLUMNS
    if taken or name.startswith((METRIC_PREFIX, HYPERPARAMETER_PREFIX)):
        return HYPERPARAMETER_PREFIX + name
    return name


def _union(mappings: Iterable[dict[str, Any] | None]) -> set[str]:
    return {str(key) for mapping in mappings for key in (mapping or {})}


def cell(value: Any) -> str:
    """One value as CSV text (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()  # type: ignore[union-attr]
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def header(trials: Sequence[Trial]) -> tuple[list[str], list[str], list[str]]:
    """The header row, the hyperparameter names and the metric names of the table."""
    names = sorted(_union(t.hyperparameters for t in trials), key=_natural)
    metrics = sorted(_union(t.metrics for t in trials))
    columns = [
        *LEADING_COLUMNS,
        *(hyperparameter_column(n) for n in names),
        *(METRIC_PREFIX + m for m in metrics),
        *TRAILING_COLUMNS,
    ]
    return columns, names, metrics


def trials_csv(trials: Sequence[Trial]) -> str:
    """The CSV text of ``trials`` (in the order given), its header first; the header alone for
    no trials."""
    columns, names, metrics = header(trials)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([cell(c) for c in columns])
    for trial in trials:
        values = trial.hyperparameters or {}
        scores = trial.metrics or {}
        row = [getattr(trial, c) for c in LEADING_COLUMNS]
        row += [values.get(n) for n in names]
        row += [scores.get(m) for m in metrics]
        row += [getattr(trial, c) for c in TRAILING_COLUMNS]
        writer.writerow([cell(v) for v in row])
    return out.getvalue()
