"""A technique study's plots as ECharts options: each variant's mean with its confidence
interval (bars with whiskers: a candlestick whose box is the mean, so no script draws them),
and each variant's mean learning curve over its seeds."""

from __future__ import annotations

from typing import Any

from api.dashboard.figures import BASE, PALETTE, compact, named_axis
from studies.reading import in_points


def _scale(objective: str) -> float:
    return 100.0 if in_points(objective) else 1.0


def _shown(value: float | None, scale: float) -> float | None:
    return None if value is None else compact(value * scale)


def study_bars(study: dict[str, Any]) -> dict[str, Any]:
    """One bar per variant (its mean objective over the seeds), a whisker over its interval;
    the baseline's bar darker, a variant beyond seed noise marked with an asterisk."""
    objective, scale = study["objective"], _scale(study["objective"])
    names, bars, whiskers = [], [], []
    for v in study["variants"]:
        o = v["objective"]
        versus = (v.get("vs_baseline") or {}).get("objective") or {}
        names.append(v["name"] + (" *" if versus.get("beyond_noise") else ""))
        color = "#1f5fbf" if v["is_baseline"] else PALETTE[0]
        bars.append({"value": _shown(o["mean"], scale), "itemStyle": {"color": color}})
        low, high, mean = o["low"], o["high"], o["mean"]
        whiskers.append(
            [_shown(mean, scale), _shown(mean, scale), _shown(low, scale), _shown(high, scale)]
            if low is not None
            else [None, None, None, None]
        )
    unit = " (points)" if scale != 1.0 else ""
    means = [b["value"] for b in bars if b["value"] is not None]
    lows = [w[2] for w in whiskers if w[2] is not None]
    floor = min(lows + means) if means else 0
    return {
        **BASE,
        "grid": {**BASE["grid"], "bottom": 72},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"interval": 0, "rotate": 20}},
        "yAxis": named_axis(f"{objective}{unit}", min=compact(floor - abs(floor) * 0.01)),
        "series": [
            {"type": "bar", "name": "mean", "data": bars, "barMaxWidth": 48},
            {
                "type": "candlestick",
                "name": f"{study['confidence']:.0%} interval",
                "data": whiskers,
                "barMaxWidth": 12,
                "itemStyle": {
                    "color": "#111",
                    "color0": "#111",
                    "borderColor": "#111",
                    "borderColor0": "#111",
                },
            },
        ],
    }


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
    """What the job page shows of a study: its table, readings and both plots."""
    return {
        "objective": study["objective"],
        "points": in_points(study["objective"]),
        "seeds": study["seeds"],
        "confidence": study["confidence"],
        "ended": study["trials_ended"],
        "planned": study["trials_planned"],
        "variants": [
            {
                k: v.get(k)
                for k in (
                    "name",
                    "is_baseline",
                    "trials",
                    "objective",
                    "fit_s",
                    "epochs_to_best",
                    "vs_baseline",
                )
            }
            for v in study["variants"]
        ],
        "reading": study["reading"],
        "figures": {"bars": study_bars(study), "curves": study_curves(study)},
    }
