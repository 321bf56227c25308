"""A trial's training health as plots: each hidden layer's gradient norm per epoch (log scale:
vanishing and exploding gradients are orders of magnitude), and its shares of dead, saturated
and identical units."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.dashboard.figures import BASE, PALETTE, compact, named_axis
from db.repositories.dashboard import EpochRow

#: the unit shares drawn, and how each line is dashed.
SHARES = {"dead": "solid", "sat": "dashed", "same": "dotted"}
SHARE_NAMES = {"dead": "dead", "sat": "saturated", "same": "identical"}


def _probed(epochs: Sequence[EpochRow]) -> list[EpochRow]:
    """The last execution's probed epochs: the one the trial's verdicts were read from (the
    others repeat it with another seed)."""
    last = max((e.execution for e in epochs), default=0)
    return [e for e in epochs if e.execution == last and e.health and e.health.get("layers")]


def _layers(probed: Sequence[EpochRow]) -> list[str]:
    return [layer["name"] for layer in probed[-1].health["layers"]] if probed else []


def _line(name: str, points: list[list[Any]], color: str, dash: str = "solid") -> dict[str, Any]:
    return {
        "name": name,
        "type": "line",
        "showSymbol": len(points) < 30,
        "symbolSize": 4,
        "connectNulls": False,
        "lineStyle": {"type": dash, "width": 1.5, "color": color},
        "itemStyle": {"color": color},
        "data": points,
    }


def _value(record: dict[str, Any], layer: str, key: str) -> Any:
    for found in record["layers"]:
        if found["name"] == layer:
            return compact(found.get(key))
    return None


def gradient_norms(epochs: Sequence[EpochRow]) -> dict[str, Any] | None:
    """Each hidden layer's kernel gradient norm on the probe batch, per probed epoch."""
    probed = _probed(epochs)
    if not probed:
        return None
    series = []
    for i, layer in enumerate(_layers(probed)):
        points = [
            [e.epoch + 1, _value(e.health, layer, "g")]
            for e in probed
            if (_value(e.health, layer, "g") or 0) > 0
        ]
        series.append(_line(layer, points, PALETTE[i % len(PALETTE)]))
    return {
        **BASE,
        "grid": {"left": 64, "right": 24, "top": 40, "bottom": 48},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "xAxis": named_axis("epoch", minInterval=1),
        "yAxis": named_axis("gradient norm (log)", "log", nameGap=48),
        "series": series,
    }


def unit_shares(epochs: Sequence[EpochRow]) -> dict[str, Any] | None:
    """Each hidden layer's shares of dead (solid), saturated (dashed) and identical (dotted)
    units, per probed epoch; only the shares that apply to its activation."""
    probed = _probed(epochs)
    if not probed:
        return None
    series = []
    for i, layer in enumerate(_layers(probed)):
        for key, dash in SHARES.items():
            points = [[e.epoch + 1, _value(e.health, layer, key)] for e in probed]
            if any(value is not None for _, value in points):
                color = PALETTE[i % len(PALETTE)]
                series.append(_line(f"{layer} {SHARE_NAMES[key]}", points, color, dash))
    return {
        **BASE,
        "grid": {"left": 64, "right": 24, "top": 40, "bottom": 48},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "xAxis": named_axis("epoch", minInterval=1),
        "yAxis": named_axis("share of the layer's units", min=0, max=1, nameGap=48),
        "series": series,
    }
