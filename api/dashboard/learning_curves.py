"""Learning curves: a trial's epochs averaged over its executions, drawn as training (dashed)
and validation (solid) lines per metric, one color per trial."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from api.dashboard.figures import BASE, PALETTE, compact, named_axis
from api.dashboard.importance import is_number
from db.repositories.dashboard import EpochRow


def epoch_means(epochs: Sequence[EpochRow]) -> dict[int, dict[str, float]]:
    """Each epoch's metrics averaged over the trial's executions."""
    sums: dict[int, dict[str, list[float]]] = {}
    for e in epochs:
        for name, value in e.metrics.items():
            if is_number(value):
                sums.setdefault(e.epoch, {}).setdefault(name, []).append(float(value))
        if e.learning_rate is not None:
            sums.setdefault(e.epoch, {}).setdefault("learning_rate", []).append(e.learning_rate)
    return {
        epoch: {name: sum(v) / len(v) for name, v in metrics.items()}
        for epoch, metrics in sorted(sums.items())
    }


def metric_bases(epochs: Iterable[EpochRow]) -> list[str]:
    """The metrics recorded, without their ``val_`` prefix (``loss``, ``accuracy``...)."""
    names = {n.removeprefix("val_") for e in epochs for n in e.metrics}
    return sorted(names, key=lambda n: (n != "loss", n))


def curves(curves_by_trial: Mapping[int, Sequence[EpochRow]], metric: str) -> dict[str, Any]:
    """Training (dashed) and validation (solid) ``metric`` per epoch, one color per trial."""
    series = []
    for i, (number, epochs) in enumerate(sorted(curves_by_trial.items())):
        means = epoch_means(epochs)
        color = PALETTE[i % len(PALETTE)]
        for prefix, label, dash in (("", "train", "dashed"), ("val_", "validation", "solid")):
            points = [
                [e + 1, compact(m[prefix + metric])]
                for e, m in means.items()
                if prefix + metric in m
            ]
            if points:
                series.append(
                    {
                        "name": f"#{number} {label}",
                        "type": "line",
                        "showSymbol": len(points) < 30,
                        "symbolSize": 4,
                        "lineStyle": {"type": dash, "width": 1.5, "color": color},
                        "itemStyle": {"color": color},
                        "data": points,
                    }
                )
    return {
        **BASE,
        "grid": {"left": 64, "right": 24, "top": 40, "bottom": 48},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "xAxis": named_axis("epoch", minInterval=1),
        "yAxis": named_axis(metric, scale=True, nameGap=48),
        "series": series,
    }
