"""A technique study's table as text cells (``studies.result``'s result, as the API gives it):
the same rows in the terminal (``hpsearch study``), in Markdown and CSV, and on the job's page."""

from __future__ import annotations

from typing import Any

from studies.reading import amount, in_points

COLUMNS = ("variant", "n", "mean", "std", "interval", "vs baseline", "p", "fit s", "epochs")


def _value(value: float | None, objective: str) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.2f}" if in_points(objective) else f"{value:.4g}"


def rows(study: dict[str, Any]) -> list[list[str]]:
    """One row per variant: its objective's mean, std and interval over the seeds (points for
    an accuracy), the difference to the baseline and Welch's p, fit seconds, epochs to best."""
    objective = study["objective"]
    found = []
    for v in study["variants"]:
        o, versus = v["objective"], (v.get("vs_baseline") or {}).get("objective") or {}
        interval = (
            f"{_value(o['low'], objective)} to {_value(o['high'], objective)}"
            if o["low"] is not None
            else "-"
        )
        delta = versus.get("delta")
        shown = "baseline" if v["is_baseline"] else "-"
        if delta is not None:
            shown = amount(delta, objective).removesuffix(" points")
            shown += " *" if versus.get("beyond_noise") else ""
        p = versus.get("p_value")
        found.append(
            [
                v["name"],
                str(o["n"]),
                _value(o["mean"], objective),
                _value(o["std"], objective),
                interval,
                shown,
                "-" if p is None else f"{p:.2g}",
                "-" if v["fit_s"]["mean"] is None else f"{v['fit_s']['mean']:.1f}",
                "-"
                if v["epochs_to_best"]["mean"] is None
                else f"{v['epochs_to_best']['mean']:.1f}",
            ]
        )
    return found


def title(study: dict[str, Any]) -> str:
    """What the table shows: the objective (in points for a share), the seeds, the intervals'
    confidence, the trials ended."""
    unit = " (points)" if in_points(study["objective"]) else ""
    return (
        f"{study['objective']}{unit} over {study['seeds']} seeds, "
        f"{study['confidence']:.0%} intervals; * beyond seed noise "
        f"({study['trials_ended']}/{study['trials_planned']} trials ended)"
    )
