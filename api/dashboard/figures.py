"""The dashboard's plots as ECharts options, built on the server from a job's rows.

The browser only hands each option to ``echarts.setOption``: aggregation (best so far, axes,
colors, empirical distributions) happens here, as Optuna's visualization module builds its
figures in Python. An option's ``series[*].data`` holds one item per point drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from api.dashboard.importance import is_log_scaled, is_number
from db.models import TrialStatus
from db.repositories.dashboard import TrialRow

#: a numeric hyperparameter with at most this many values is drawn as categories.
MAX_CATEGORY_NUMBERS = 8
MISSING = "—"
STATUS_COLORS = {
    TrialStatus.COMPLETED: "#3b7dd8",
    TrialStatus.RUNNING: "#e3a21a",
    TrialStatus.WAITING: "#9aa5b1",
    TrialStatus.DIVERGED: "#d64545",
    TrialStatus.FAILED: "#8e2c2c",
    TrialStatus.CANCELLED: "#6b7280",
    TrialStatus.PRUNED: "#7c5cc4",
}
PALETTE = ["#3b7dd8", "#e3a21a", "#2f9e6e", "#d64545", "#7c5cc4", "#1aa3b8", "#c4568f",
           "#6b8e23", "#b8860b", "#4b5563"]  # fmt: skip
SCORE_COLORS = ["#d64545", "#e3a21a", "#2f9e6e", "#1f5fbf"]
BASE = {"animation": False, "grid": {"left": 64, "right": 24, "top": 36, "bottom": 48}}


def compact(value: Any) -> Any:
    """A float to 6 significant digits (what a plot can show; the JSON shrinks by half)."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def named_axis(name: str, kind: str = "value", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "name": name, "nameLocation": "middle", "nameGap": 30, **extra}


def scored(rows: Iterable[TrialRow]) -> list[TrialRow]:
    """The completed trials with a score, in number order."""
    return [r for r in rows if r.status == TrialStatus.COMPLETED and r.score is not None]


def best_so_far(scores: Sequence[float], maximize: bool) -> list[float]:
    """The running best of ``scores``."""
    best: list[float] = []
    for score in scores:
        better = not best or (score > best[-1] if maximize else score < best[-1])
        best.append(score if better else best[-1])
    return best


def history(rows: Sequence[TrialRow], maximize: bool, objective: str) -> dict[str, Any]:
    """Every completed trial's score and the best so far, against trial number."""
    done = scored(rows)
    best = best_so_far([r.score for r in done], maximize)  # type: ignore[misc]
    return {
        **BASE,
        "tooltip": {"trigger": "item"},
        "legend": {"top": 0},
        "xAxis": named_axis("trial", min=0),
        "yAxis": named_axis(objective, scale=True, nameGap=48),
        "dataZoom": [{"type": "inside"}],
        "series": [
            {
                "name": "trial",
                "type": "scatter",
                "symbolSize": 6,
                "data": [[r.number, compact(r.score)] for r in done],
            },
            {
                "name": "best so far",
                "type": "line",
                "step": "end",
                "showSymbol": False,
                "data": [[r.number, compact(b)] for r, b in zip(done, best, strict=True)],
            },
        ],
    }


def history_by_time(
    rows: Sequence[TrialRow], maximize: bool, objective: str, start: datetime | None
) -> dict[str, Any]:
    """Every completed trial's score and the best so far, against minutes since ``start``."""
    ended = sorted((r for r in scored(rows) if r.finished_at), key=lambda r: r.finished_at)  # type: ignore[arg-type, return-value]
    origin = start or (ended[0].started_at if ended else None)
    if origin is None:
        return history([], maximize, objective)

    def minutes(r: TrialRow) -> float:
        return round((r.finished_at - origin).total_seconds() / 60, 4)  # type: ignore[operator]

    best = best_so_far([r.score for r in ended], maximize)  # type: ignore[misc]
    option = history([], maximize, objective)
    option["xAxis"] = named_axis("minutes since the job started", min=0)
    option["series"][0]["data"] = [[minutes(r), compact(r.score), r.number] for r in ended]
    option["series"][1]["data"] = [
        [minutes(r), compact(b)] for r, b in zip(ended, best, strict=True)
    ]
    return option


def varying_params(rows: Sequence[TrialRow]) -> list[str]:
    """The hyperparameters that take more than one value over the trials, in first-seen order
    (one only some trials have, such as a third layer's units, counts if it varies where set)."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for name, value in (row.hyperparameters or {}).items():
            values.setdefault(name, set()).add(repr(value))
    return [name for name, seen in values.items() if len(seen) > 1]


def _label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def param_axis(name: str, values: Sequence[Any]) -> tuple[dict[str, Any], list[Any]]:
    """An axis for a hyperparameter and its values mapped onto it: a value axis (log-scaled
    when the values span decades) for a sampled range, else categories (numbers in numeric
    order; ``MISSING`` where a trial lacks the hyperparameter). A range of floats shows as one
    from its fifth distinct value; integers from their ninth (a few units are categories)."""
    present = [v for v in values if v is not None]
    numbers = all(is_number(v) for v in present)
    distinct = len(set(present))
    floats = any(isinstance(v, float) and not v.is_integer() for v in present)
    if numbers and None not in values and distinct > (4 if floats else MAX_CATEGORY_NUMBERS):
        kind = "log" if is_log_scaled(present) else "value"
        return {"type": kind, "name": name, "scale": True}, [compact(v) for v in values]
    ordered = sorted(set(present), key=lambda v: (not numbers, v if numbers else str(v)))
    categories = [_label(v) for v in ordered] + ([MISSING] if None in values else [])
    mapped = [MISSING if v is None else _label(v) for v in values]
    return {"type": "category", "name": name, "data": categories}, mapped


def _score_map(scores: Sequence[float], dimension: int, maximize: bool) -> dict[str, Any]:
    colors = SCORE_COLORS if maximize else SCORE_COLORS[::-1]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    return {
        "type": "continuous",
        "dimension": dimension,
        "min": low,
        "max": high if high > low else low + 1e-9,
        "inRange": {"color": colors},
        "calculable": True,
        "right": 0,
        "top": "middle",
        "itemHeight": 120,
        "text": ["score", ""],
    }


def parallel(
    rows: Sequence[TrialRow], params: Sequence[str], maximize: bool, objective: str
) -> dict[str, Any]:
    """Parallel coordinates: one line per completed trial through its hyperparameters and its
    score (the last axis), colored by score; drag on an axis to select a range."""
    done = scored(rows)
    columns = []
    axes = []
    for index, name in enumerate(params):
        axis, mapped = param_axis(name, [(r.hyperparameters or {}).get(name) for r in done])
        axes.append({"dim": index, **axis})
        columns.append(mapped)
    scores = [compact(r.score) for r in done]
    axes.append({"dim": len(params), "type": "value", "name": objective, "scale": True})
    data = [[*(column[i] for column in columns), s] for i, s in enumerate(scores)]
    return {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "parallel": {"left": 48, "right": 110, "top": 48, "bottom": 36},
        "parallelAxis": [{**a, "nameRotate": 20} for a in axes],
        "visualMap": _score_map(scores, len(params), maximize),  # type: ignore[arg-type]
        "series": [
            {
                "name": "trials",
                "type": "parallel",
                "lineStyle": {"width": 1, "opacity": 0.5},
                "data": data,
            }
        ],
    }


def slice_plot(
    rows: Sequence[TrialRow], name: str, objective: str, trial_count: int
) -> dict[str, Any]:
    """Score against one hyperparameter's value, colored by trial number (later = darker)."""
    done = scored(rows)
    axis, mapped = param_axis(name, [(r.hyperparameters or {}).get(name) for r in done])
    return {
        **BASE,
        "grid": {"left": 56, "right": 16, "top": 40, "bottom": 44},
        "title": {"text": name, "textStyle": {"fontSize": 13}, "left": "center"},
        "tooltip": {"trigger": "item"},
        "xAxis": {**named_axis(name, nameGap=26), **axis},
        "yAxis": named_axis(objective, scale=True, nameGap=40),
        "visualMap": {
            "show": False,
            "dimension": 2,
            "min": 0,
            "max": max(trial_count - 1, 1),
            "inRange": {"color": ["#b9d3f5", "#123f80"]},
        },
        "series": [
            {
                "type": "scatter",
                "symbolSize": 6,
                "data": [
                    [v, compact(r.score), r.number] for v, r in zip(mapped, done, strict=True)
                ],
            }
        ],
    }


def importance(found: Mapping[str, float]) -> dict[str, Any]:
    """Horizontal bars, the most important hyperparameter on top."""
    names = list(found)[::-1]
    return {
        **BASE,
        "grid": {"left": 140, "right": 24, "top": 16, "bottom": 36},
        "tooltip": {"trigger": "item"},
        "xAxis": named_axis("importance (PED-ANOVA)", min=0),
        "yAxis": {"type": "category", "data": names},
        "series": [{"type": "bar", "data": [round(found[n], 4) for n in names], "barMaxWidth": 18}],
    }


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def short_worker(worker: str) -> str:
    """``host:main_pid:child_pid`` as ``host pid child``, the host cut to 16 characters."""
    host, _, rest = worker.partition(":")
    return f"{host[:16]} {rest.replace(':', '/')}".strip()


def timeline(rows: Sequence[TrialRow], now: datetime) -> dict[str, Any]:
    """A lane per worker process with a bar per trial it ran (gaps are idle time), and a lane of
    the search algorithm's proposals (their time spent proposing). One series per status; an
    item is ``[lane, start ms, end ms, trial number]``."""
    lanes = sorted({short_worker(r.worker) for r in rows if r.worker and r.started_at})
    index = {lane: i + 1 for i, lane in enumerate(lanes)}
    by_series: dict[str, list[list[int]]] = {}
    for r in rows:
        if r.proposed_at is not None and r.proposal_s is not None:
            end = _ms(r.proposed_at) + max(int(r.proposal_s * 1000), 1)
            by_series.setdefault("proposed", []).append([0, _ms(r.proposed_at), end, r.number])
        if r.worker and r.started_at:
            lane = index[short_worker(r.worker)]
            finished = _ms(r.finished_at or now)
            by_series.setdefault(r.status.value, []).append(
                [lane, _ms(r.started_at), finished, r.number]
            )
    colors = {s.value: c for s, c in STATUS_COLORS.items()} | {"proposed": "#9aa5b1"}
    return {
        **BASE,
        "grid": {"left": 150, "right": 24, "top": 28, "bottom": 48},
        "legend": {"top": 0},
        "tooltip": {"trigger": "item", "formatter": "trial {@[3]} {a}"},
        "dataZoom": [{"type": "inside", "filterMode": "weakFilter"}],
        "xAxis": {"type": "time", "scale": True},
        "yAxis": {"type": "category", "data": ["proposals", *lanes]},
        "series": [
            {
                "name": name,
                "type": "custom",
                "renderItem": "timelineBar",
                "itemStyle": {"color": colors[name]},
                "encode": {"x": [1, 2], "y": 0},
                "data": data,
            }
            for name, data in by_series.items()
        ],
    }


def compare_histories(jobs: Sequence[tuple[str, Sequence[TrialRow], bool]]) -> dict[str, Any]:
    """The best score so far of each job (label, rows, maximize) against trial number."""
    series = []
    for label, rows, maximize in jobs:
        done = scored(rows)
        best = best_so_far([r.score for r in done], maximize)  # type: ignore[misc]
        series.append(
            {
                "name": label,
                "type": "line",
                "step": "end",
                "showSymbol": False,
                "data": [[r.number, compact(b)] for r, b in zip(done, best, strict=True)],
            }
        )
    return {
        **BASE,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "xAxis": named_axis("trial", min=0),
        "yAxis": named_axis("best score so far", scale=True, nameGap=48),
        "series": series,
    }


def empirical_distribution(jobs: Sequence[tuple[str, Sequence[TrialRow]]]) -> dict[str, Any]:
    """Each job's empirical distribution function of its completed trials' scores: the share
    of trials scoring at most x."""
    series = []
    for label, rows in jobs:
        scores = sorted(r.score for r in scored(rows))  # type: ignore[type-var]
        n = len(scores)
        series.append(
            {
                "name": label,
                "type": "line",
                "step": "end",
                "showSymbol": False,
                "data": [[compact(s), round((i + 1) / n, 4)] for i, s in enumerate(scores)],
            }
        )
    return {
        **BASE,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "xAxis": named_axis("score", scale=True),
        "yAxis": named_axis("share of trials scoring at most x", min=0, max=1, nameGap=40),
        "series": series,
    }


def bars(labels: Sequence[str], counts: Sequence[float], name: str) -> dict[str, Any]:
    """A plain bar chart (class balance, a target's histogram)."""
    return {
        **BASE,
        "tooltip": {"trigger": "item"},
        "xAxis": {"type": "category", "data": list(labels), "axisLabel": {"rotate": 30}},
        "yAxis": named_axis(name),
        "series": [{"type": "bar", "data": list(counts), "barMaxWidth": 40}],
    }
