"""What a trial's health records mean: verdicts, each with its evidence and the articles' remedy.

A verdict reads what the worker stored (each epoch's metrics and probe record, ``health.signals``)
and the job's facts (its objective, direction and the score of a constant prediction, the
baseline); it never needs the network again, so thresholds can be tuned on stored runs
(``bench/health_verdicts.py``). Each threshold is named here with the reason for its value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from health.baseline import comparable

#: a hidden layer this share of whose units are identical is symmetric (a constant init).
SYMMETRIC_SHARE = 0.9
#: ReLU layers with this share of dead units (on every probe row) have died.
DEAD_SHARE = 0.5
#: sigmoid/tanh layers with this share of units stuck at a bound are saturated. Fitted on the
#: labelled runs (bench/health_verdicts.py): the worst layer of a 10-layer sigmoid stack with
#: normal(0, 1) weights held 0.36-0.43 of its units at a bound; every Glorot-initialized
#: sigmoid/tanh net 0.00.
SATURATED_SHARE = 0.25
#: the lowest hidden layer's gradient below this fraction of the highest's: vanishing.
VANISHING_RATIO = 1e-3
#: a kernel gradient norm this many times its first probed value (or not finite): exploding.
#: Relative, as the scale of the gradients follows the targets' (a regression on dollars
#: starts at ~1e6 and is healthy while it falls).
EXPLODING_GROWTH = 1e2
#: predictions whose spread over the probe rows is below this (times the targets' spread for
#: a regression) are constant.
CONSTANT_SPREAD = 1e-3
#: a score within this of the baseline's is no better than a constant prediction.
BASELINE_MARGIN = 0.005
#: training better than validation by this much at the end (accuracy points; a share of the
#: validation loss for a minimized objective)...
OVERFIT_GAP = 0.05
OVERFIT_LOSS_GAP = 0.2
#: ...while validation fell back from its best by this much (points; a share for a loss).
OVERFIT_SLIDE = 0.01
OVERFIT_LOSS_SLIDE = 0.1
#: the objective still improved by this share over the last ``IMPROVING_EPOCHS`` epochs.
IMPROVING_SHARE = 0.005
IMPROVING_EPOCHS = 3

REMEDIES: Mapping[str, str] = {
    "symmetric_units": "a random initializer (he_normal for the ReLU family, glorot for "
    "tanh/sigmoid, lecun_normal for SELU): a constant one gives every unit of a layer the same "
    "weights, and they stay the same",
    "dead_units": "a lower learning rate, or leaky ReLU, ELU or SELU (their units keep a slope "
    "below zero), with He initialization",
    "saturated_units": "ReLU-family activations, or batch norm; Glorot initialization and "
    "standardized inputs keep sigmoid/tanh inputs near zero",
    "vanishing_gradients": "non-saturating activations (ReLU family, SELU) with He or LeCun "
    "initialization, batch norm, or fewer layers",
    "exploding_gradients": "gradient clipping (clipnorm), a lower learning rate, batch norm, "
    "standardized inputs",
    "collapsed": "an optimizer that moves (adam, rmsprop, nadam) or a higher learning rate; "
    "standardized inputs; check it did not diverge first",
    "diverged": "a lower learning rate, gradient clipping, standardized inputs",
    "overfitting": "dropout, l1/l2 or max-norm, early stopping, a smaller network",
    "still_improving": "more epochs, a higher learning rate, or a learning-rate schedule",
}


@dataclass(frozen=True)
class Verdict:
    """One finding about a trial: its code, its evidence (numbers, layer, epoch), the remedy."""

    code: str
    evidence: dict[str, Any]
    remedy: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "evidence": self.evidence, "remedy": self.remedy}


@dataclass(frozen=True)
class EpochRecord:
    """One epoch as stored: its metrics and probe record (None when not probed)."""

    epoch: int
    metrics: Mapping[str, float]
    health: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TrialFacts:
    """What a verdict needs of a trial and its job."""

    epochs: Sequence[EpochRecord]
    objective: str
    maximize: bool
    #: the objective a constant prediction scores on the validation rows (majority class, mean)
    baseline: float | None = None
    score: float | None = None
    diverged: bool = False
    epochs_allowed: int | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)


def _verdict(code: str, **evidence: Any) -> Verdict:
    return Verdict(code, evidence, REMEDIES[code])


def _probed(facts: TrialFacts) -> list[EpochRecord]:
    return [e for e in facts.epochs if e.health and e.health.get("layers")]


def symmetric(facts: TrialFacts) -> Verdict | None:
    """Units of a layer identical to each other from the first probed epoch to the last."""
    probed = _probed(facts)
    if not probed:
        return None
    first, last = probed[0], probed[-1]
    for before, after in zip(first.health["layers"], last.health["layers"], strict=False):
        shares = (before.get("same"), after.get("same"))
        if all(s is not None and s >= SYMMETRIC_SHARE for s in shares):
            return _verdict(
                "symmetric_units", layer=after["name"], epoch=last.epoch, identical_share=shares[1]
            )
    return None


def _layer_share(facts: TrialFacts, key: str, threshold: float, code: str) -> Verdict | None:
    probed = _probed(facts)
    if not probed:
        return None
    last = probed[-1]
    for layer in last.health["layers"]:
        share = layer.get(key)
        if share is not None and share >= threshold:
            return _verdict(code, layer=layer["name"], epoch=last.epoch, share=share)
    return None


def dead(facts: TrialFacts) -> Verdict | None:
    """Most units of a ReLU layer output 0 on every probe row at the last probed epoch."""
    return _layer_share(facts, "dead", DEAD_SHARE, "dead_units")


def saturated(facts: TrialFacts) -> Verdict | None:
    """Most units of a sigmoid/tanh layer stuck at a bound at the last probed epoch."""
    return _layer_share(facts, "sat", SATURATED_SHARE, "saturated_units")


def vanishing(facts: TrialFacts) -> Verdict | None:
    """The lowest hidden layer's gradient orders of magnitude below the highest's, on the
    median probed epoch (one epoch's noise does not decide)."""
    ratios = []
    for record in _probed(facts):
        norms = [layer.get("g") for layer in record.health["layers"]]
        if len(norms) >= 2 and all(n is not None for n in norms) and norms[-1] > 0:
            ratios.append((norms[0] / norms[-1], record.epoch))
    if not ratios:
        return None
    ratio, epoch = sorted(ratios)[len(ratios) // 2]
    if ratio < VANISHING_RATIO:
        return _verdict("vanishing_gradients", ratio=ratio, epoch=epoch)
    return None


def exploding(facts: TrialFacts) -> Verdict | None:
    """A kernel gradient not finite, or grown ``EXPLODING_GROWTH`` times since the first
    probed epoch."""
    probed = _probed(facts)
    if not probed:
        return None
    first = {layer["name"]: layer.get("g") for layer in probed[0].health["layers"]}
    for record in probed:
        for layer in record.health["layers"]:
            norm, start = layer.get("g"), first.get(layer["name"])
            grown = norm is not None and start and norm > EXPLODING_GROWTH * start
            if norm is None or grown:
                return _verdict(
                    "exploding_gradients",
                    layer=layer["name"],
                    epoch=record.epoch,
                    norm=norm,
                    first_norm=start,
                )
    return None


def no_better_than(score: float | None, baseline: float | None, maximize: bool) -> bool:
    """Whether ``score`` is within ``BASELINE_MARGIN`` of a constant prediction's (or worse)."""
    if score is None or baseline is None:
        return False
    gain = score - baseline if maximize else baseline - score
    return gain <= BASELINE_MARGIN * max(1.0, abs(baseline))


def collapsed(facts: TrialFacts) -> Verdict | None:
    """The score no better than a constant prediction's (the baseline), or predictions that do
    not vary over the probe rows."""
    probed = _probed(facts)
    spread = probed[-1].health.get("out_std") if probed else None
    target_spread = (probed[-1].health.get("y_std") if probed else None) or 1.0
    regularizer = facts.hyperparameters.get("regularizer")
    at_baseline = comparable(facts.objective, regularizer) and no_better_than(
        facts.score, facts.baseline, facts.maximize
    )
    constant = spread is not None and spread < CONSTANT_SPREAD * target_spread
    if at_baseline or constant:
        return _verdict(
            "collapsed", score=facts.score, baseline=facts.baseline, output_spread=spread
        )
    return None


def diverged(facts: TrialFacts) -> Verdict | None:
    """The loss became NaN/inf (the trial's status says so), with its likely cause."""
    if not facts.diverged:
        return None
    hp = facts.hyperparameters
    causes = []
    rate = hp.get("learning_rate")
    if isinstance(rate, int | float) and rate >= 0.1:
        causes.append(f"learning rate {rate}")
    if hp.get("clipping", "none") == "none":
        causes.append("no gradient clipping")
    if hp.get("standardize") is False:
        causes.append("unscaled inputs")
    return _verdict("diverged", likely_causes=causes)


def overfitting(facts: TrialFacts) -> Verdict | None:
    """Training pulls away from validation at the end while validation is past its best; not
    for a trial that diverged (its scores mean nothing) or stopped before its epochs ran out
    (early stopping caught it, and keeps its best epoch)."""
    if facts.diverged:
        return None
    if facts.epochs_allowed is not None and len(facts.epochs) < facts.epochs_allowed:
        return None
    base = facts.objective.removeprefix("val_")
    scored = [
        (e.epoch, e.metrics.get(base), e.metrics.get(facts.objective))
        for e in facts.epochs
        if _finite(e.metrics.get(base)) and _finite(e.metrics.get(facts.objective))
    ]
    if len(scored) < 3 or base == facts.objective:
        return None
    epoch, train, val = scored[-1]
    values = [v for _, _, v in scored]
    if facts.maximize:
        gap, slide = train - val, max(values) - val
        overfit = gap > OVERFIT_GAP and slide > OVERFIT_SLIDE
    else:
        scale = max(abs(val), 1e-12)
        gap, slide = (val - train) / scale, (val - min(values)) / scale
        overfit = gap > OVERFIT_LOSS_GAP and slide > OVERFIT_LOSS_SLIDE
    if overfit:
        return _verdict("overfitting", epoch=epoch, train=train, validation=val, gap=gap)
    return None


def still_improving(facts: TrialFacts) -> Verdict | None:
    """Every allowed epoch ran and the objective still improved over the last few."""
    values = [e.metrics.get(facts.objective) for e in facts.epochs]
    values = [v for v in values if _finite(v)]
    if facts.epochs_allowed is None or len(facts.epochs) < facts.epochs_allowed:
        return None
    if len(values) <= IMPROVING_EPOCHS:
        return None
    before, now = values[-1 - IMPROVING_EPOCHS], values[-1]
    gain = (now - before) if facts.maximize else (before - now)
    if gain > IMPROVING_SHARE * max(abs(before), 1e-12):
        return _verdict("still_improving", last_epochs=IMPROVING_EPOCHS, gain=gain)
    return None


#: in the order they are reported: causes before their consequences.
RULES = (
    diverged,
    symmetric,
    exploding,
    vanishing,
    dead,
    saturated,
    collapsed,
    overfitting,
    still_improving,
)


def judge(facts: TrialFacts) -> list[Verdict]:
    """Every verdict the trial's records support, causes first; ``healthy`` when none does."""
    found = [verdict for rule in RULES if (verdict := rule(facts)) is not None]
    return found or [Verdict("healthy", {}, "")]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
