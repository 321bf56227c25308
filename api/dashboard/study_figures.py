"""A technique study's plots as ECharts options: each variant's mean with its confidence
interval (a dot and a whisker: a candlestick whose box is the mean, so no script draws it),
and each variant's mean learning curve over its seeds."""

from __future__ import annotations

from typing import Any

from api.dashboard.figures import BASE, PALETTE, compact, named_axis
from studies.reading import in_points
from studies.table import COLUMNS, rows, title


def _scale(objective: str) -> float:
    return 100.0 if in_points(objective) else 1.0


def _shown(value: float | None, scale: float) -> float | None:
    return None if value is None else compact(value * scale)


def study_means(study: dict[str, Any]) -> dict[str, Any]:
    """Each variant's mean objective over its seeds (a dot, the baseline's darker) with a
    whisker over its interval; a variant beyond seed noise is marked with an asterisk. The
    axis opens on the variants near the baseline (a variant far off, like a constant init at
    chance, is reached by zooming out: the slider)."""
    objective, scale = study["objective"], _scale(study["objective"])
    names, dots, whiskers = [], [], []
    for v in study["variants"]:
        o = v["objective"]
        versus = (v.get("vs_baseline") or {}).get("objective") or {}
        names.append(v["name"] + (" *" if versus.get("beyond_noise") else ""))
        color = "#1f5fbf" if v["is_baseline"] else PALETTE[0]
        dots.append({"value": _shown(o["mean"], scale), "itemStyle": {"color": color}})
        mean, low, high = (_shown(o[k], scale) for k in ("mean", "low", "high"))
        whiskers.append([mean, mean, low, high] if low is not None else [None] * 4)
    unit = " (points)" if scale != 1.0 else ""
    return {
        **BASE,
        "grid": {**BASE["grid"], "bottom": 80, "right": 56},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"interval": 0, "rotate": 20}},
        # the window's own ends are not round numbers: only the ticks between are labelled
        "yAxis": named_axis(
            f"{objective}{unit}",
            scale=True,
            nameGap=44,
            axisLabel={"showMinLabel": False, "showMaxLabel": False},
        ),
        "dataZoom": [
            {"type": "slider", "yAxisIndex": 0, "right": 8, "width": 16, **_window(study, scale)},
            {"type": "inside", "yAxisIndex": 0},
        ],
        "series": [
            {"type": "scatter", "name": "mean", "data": dots, "symbolSize": 12},
            {
                "type": "candlestick",
                "name": f"{study['confidence']:.0%} interval",
                "data": whiskers,
                "barMaxWidth": 12,
                "itemStyle": {"color": "#111", "color0": "#111", "borderColor": "#111",
                              "borderColor0": "#111"},
            },
        ],
    }  # fmt: skip


def _window(study: dict[str, Any], scale: float) -> dict[str, float]:
    """The y range first shown: the intervals of the variants whose mean is within half the
    baseline's of it (all of them when the baseline's mean is unknown or 0), padded."""
    rows = study["variants"]
    base = next((v["objective"]["mean"] for v in rows if v["is_baseline"]), None)
    near = [
        v["objective"] for v in rows
        if v["objective"]["mean"] is not None
        and (not base or abs(v["objective"]["mean"] - base) <= abs(base) / 2)
    ]  # fmt: skip
    values = [x for o in near for x in (o["low"], o["high"], o["mean"]) if x is not None]
    if not values:
        return {}
    low, high = min(values) * scale, max(values) * scale
    pad = (high - low) * 0.1 or abs(high) * 0.01 or 1.0
    return {"startValue": compact(low - pad), "endValue": compact(high + pad)}


def study_curves(study: dict[str, Any]) -> dict[str, Any]:
    """Each variant's objective per epoch, the mean over its seeds."""
    scale = _scale(study["objective"])
    series = [
        {
            "type": "line",
            "name": v["name"],
            "showSymbol": False,
            "data": [[i + 1, _shown(y, scale)] for i, y in enumerate(v["curve"])],
            "color": PALETTE[i % len(PALETTE)],
        }
        for i, v in enumerate(study["variants"])
    ]
    return {
        **BASE,
        "grid": {**BASE["grid"], "top": 56},
        "legend": {"type": "scroll", "top": 0},
        "tooltip": {"trigger": "axis"},
        "xAxis": named_axis("epoch", min=1),
        "yAxis": named_axis(study["objective"], scale=True),
        "series": series,
    }


def study_view(study: dict[str, Any]) -> dict[str, Any]:
    """What the job page shows of a study: its table (the terminal's cells, ``studies.table``),
    readings and both plots."""
    return {
        "variants": [{"name": v["name"]} for v in study["variants"]],
        "title": title(study),
        "columns": COLUMNS,
        "rows": rows(study),
        "reading": study["reading"],
        "figures": {"means": study_means(study), "curves": study_curves(study)},
    }
