"""A variant's difference to the baseline in words: how much, which way, and whether it is
beyond the seeds' noise ("batch norm: +0.6 points of val_accuracy over he_normal, beyond seed
noise (95% interval +0.2 to +1.0, Welch p = 0.01)")."""

from __future__ import annotations

from typing import Any

from studies.stats import Difference

#: objectives read in points (x 100): shares of 1.
POINTS = ("accuracy", "auc", "precision", "recall")


def in_points(objective: str) -> bool:
    return any(word in objective for word in POINTS)


def amount(value: float, objective: str, signed: bool = True) -> str:
    """``value`` as the reading shows it: points for a share, else 4 significant digits."""
    if in_points(objective):
        shown = f"{value * 100:+.2f}" if signed else f"{value * 100:.2f}"
        return f"{shown} points"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def variant_reading(
    name: str,
    baseline: str,
    objective: str,
    maximize: bool,
    difference: Difference,
    row: dict[str, Any],
    confidence: float,
    comparisons: int = 1,
) -> str:
    """One line on ``name`` against ``baseline`` (one of ``comparisons`` made)."""
    if difference.delta is None:
        return f"{name}: no {objective} yet to compare with {baseline}"
    what = f"{name}: {amount(difference.delta, objective)} of {objective} vs {baseline}"
    if difference.beyond_noise is None:
        return f"{what}; too few seeds to tell it from noise"
    better = (difference.delta > 0) == maximize
    low = amount(difference.low or 0.0, objective).removesuffix(" points")
    level = f"{confidence:.0%} interval {low} to " + (
        f"{amount(difference.high or 0.0, objective)}, Welch p = {difference.p_value:.2g}"
    )
    if difference.beyond_noise:
        verdict = "better" if better else "worse"
        line = f"{what}: {verdict}, beyond seed noise ({level})"
        if difference.p_holm is not None and difference.p_holm >= 1 - confidence:
            line += (
                f", though not once corrected for the {comparisons} comparisons "
                f"(Holm p = {difference.p_holm:.2g})"
            )
    else:
        line = f"{what}: within seed noise ({level})"
    failed = row["trials"]["failed"] + row["trials"]["diverged"]
    if failed:
        line += f"; {failed} of its trials failed or diverged"
    if row["trials"]["pruned"]:
        line += f"; {row['trials']['pruned']} stopped as hopeless"
    return line
