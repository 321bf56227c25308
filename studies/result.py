"""A technique study's result from its trials: per variant its objective, fit time and epochs
to best over the seeds (``stats.summarize``), its difference to the baseline variant
(``stats.welch``) and a plain reading (``reading``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studies.reading import variant_reading
from studies.stats import Difference, holm, summarize, welch

#: trial statuses whose score counts: a pruned (hopeless) trial scored what it could.
SCORED = ("completed", "pruned")
ENDED = ("completed", "pruned", "failed", "diverged", "cancelled")


@dataclass(frozen=True)
class StudyTrial:
    """What a study's result reads of one trial."""

    variant: str
    seed: int
    status: str
    score: float | None
    fit_s: float | None
    best_epoch: int | None


DIFFERENCE = ("delta", "low", "high", "p_value", "p_holm")


def _adjust(rows: list[dict[str, Any]], confidence: float) -> None:
    """Each comparison's Holm-adjusted p-value, over all the variants compared."""
    compared = [r["vs_baseline"]["objective"] for r in rows if "vs_baseline" in r]
    for found, adjusted in zip(compared, holm([c["p_value"] for c in compared]), strict=True):
        found["p_holm"] = adjusted
        found["beyond_noise_holm"] = None if adjusted is None else adjusted < 1 - confidence


def study_result(
    variants: Mapping[str, Mapping[str, Any]],
    baseline: str,
    seeds: int,
    confidence: float,
    objective: str,
    maximize: bool,
    trials: Sequence[StudyTrial],
) -> dict[str, Any]:
    """The study's table: one entry per variant (in the spec's order), the baseline's first
    comparison being with itself (no difference)."""
    by_variant: dict[str, list[StudyTrial]] = {name: [] for name in variants}
    for trial in trials:
        by_variant.setdefault(trial.variant, []).append(trial)

    def column(name: str, field: str) -> list[float | None]:
        found = []
        for t in by_variant[name]:
            if t.status in SCORED:
                value = getattr(t, field)
                found.append(None if value is None else float(value) + (field == "best_epoch"))
        return found

    rows = []
    for name, patch in variants.items():
        ran = by_variant[name]
        row: dict[str, Any] = {
            "name": name,
            "patch": dict(patch),
            "is_baseline": name == baseline,
            "trials": {s: sum(t.status == s for t in ran) for s in ENDED},
            "objective": summarize(column(name, "score"), confidence).as_dict(),
            "fit_s": summarize(column(name, "fit_s"), confidence).as_dict(),
            "epochs_to_best": summarize(column(name, "best_epoch"), confidence).as_dict(),
        }
        row["trials"]["running"] = len(ran) - sum(row["trials"][s] for s in ENDED)
        if name != baseline:
            difference = welch(column(name, "score"), column(baseline, "score"), confidence)
            fit = welch(column(name, "fit_s"), column(baseline, "fit_s"), confidence)
            row["vs_baseline"] = {"objective": difference.as_dict(), "fit_s": fit.as_dict()}
        rows.append(row)
    _adjust(rows, confidence)
    compared = [r for r in rows if "vs_baseline" in r]
    for row in compared:
        difference = Difference(**{k: row["vs_baseline"]["objective"][k] for k in DIFFERENCE})
        row["reading"] = variant_reading(
            row["name"], baseline, objective, maximize, difference, row, confidence, len(compared)
        )
    ended = sum(t.status in ENDED for t in trials)
    return {
        "objective": objective,
        "direction": "max" if maximize else "min",
        "baseline": baseline,
        "seeds": seeds,
        "confidence": confidence,
        "trials_ended": ended,
        "trials_planned": len(variants) * seeds,
        "variants": rows,
        "reading": [r["reading"] for r in rows if "reading" in r],
    }
