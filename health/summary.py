"""A job's training health at a glance: how many trials got each verdict, and which
hyperparameter values go with a verdict ("9 of 9 trials with optimizer=adadelta collapsed"),
turned into advice from results."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from health.verdicts import REMEDIES

#: a value goes with a verdict when at least this many trials took it...
MIN_TRIALS_WITH_VALUE = 3
#: ...at least this share of them got the verdict...
MIN_SHARE = 0.8
#: ...and that share is this many times the verdict's share over all judged trials.
MIN_LIFT = 1.5
#: numbers with more distinct values than this are grouped into thirds of their trials.
MAX_CATEGORIES = 6

WHAT = {
    "collapsed": "collapsed to a constant prediction",
    "diverged": "diverged",
    "symmetric_units": "kept identical units (constant initialization)",
    "exploding_gradients": "had exploding gradients",
    "vanishing_gradients": "had vanishing gradients",
    "dead_units": "lost most units of a ReLU layer (dead units)",
    "saturated_units": "saturated their sigmoid/tanh units",
    "overfitting": "overfitted",
    "still_improving": "were still improving at the epoch limit",
}


@dataclass(frozen=True)
class JudgedTrial:
    """A trial's hyperparameters and the codes of its verdicts."""

    hyperparameters: Mapping[str, Any]
    codes: Sequence[str]


@dataclass(frozen=True)
class Association:
    """Trials that took ``hyperparameter = value`` and how many of them got ``verdict``."""

    verdict: str
    hyperparameter: str
    value: str
    trials: int
    with_verdict: int

    @property
    def share(self) -> float:
        return self.with_verdict / self.trials

    def advice(self) -> str:
        what = WHAT.get(self.verdict, self.verdict)
        return (
            f"{self.with_verdict} of {self.trials} trials with {self.hyperparameter}="
            f"{self.value} {what}: {REMEDIES.get(self.verdict, '')}"
        )


def judged(hyperparameters: Mapping[str, Any], health: Mapping[str, Any]) -> JudgedTrial:
    """A trial as stored (its hyperparameters and ``trials.health``) for the summary."""
    return JudgedTrial(hyperparameters, [v["code"] for v in health.get("verdicts", [])])


def verdict_counts(trials: Iterable[JudgedTrial]) -> dict[str, int]:
    """How many trials got each verdict (a trial may have several), most frequent first."""
    counts = Counter(code for trial in trials for code in set(trial.codes))
    return dict(counts.most_common())


def _value_labels(trials: Sequence[JudgedTrial], name: str) -> list[str | None]:
    """Each trial's value of ``name`` as a label (None where the trial has none); numbers with
    many values as thirds of their trials."""
    values = [trial.hyperparameters.get(name) for trial in trials]
    numbers = sorted(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    if len(set(numbers)) <= MAX_CATEGORIES:
        return [None if v is None else str(v) for v in values]
    low, high = numbers[len(numbers) // 3], numbers[2 * len(numbers) // 3]

    def label(v: Any) -> str | None:
        if v is None:
            return None
        if not isinstance(v, int | float) or isinstance(v, bool):
            return str(v)
        return (
            f"<= {low:.3g}"
            if v <= low
            else (f"> {high:.3g}" if v > high else f"{low:.3g}..{high:.3g}")
        )

    return [label(v) for v in values]


def associations(trials: Sequence[JudgedTrial]) -> list[Association]:
    """The hyperparameter values that go with a verdict other than ``healthy``: most of the
    trials that took them got it, far more often than trials overall; strongest first."""
    total = len(trials)
    if total == 0:
        return []
    overall = verdict_counts(trials)
    names = sorted({name for trial in trials for name in trial.hyperparameters})
    found = []
    for name in names:
        if name.startswith("tuner/"):
            continue
        groups: dict[str, list[JudgedTrial]] = {}
        for trial, label in zip(trials, _value_labels(trials, name), strict=True):
            if label is not None:
                groups.setdefault(label, []).append(trial)
        for label, having in sorted(groups.items()):
            if len(having) < MIN_TRIALS_WITH_VALUE or len(having) == total:
                continue
            for code, count in verdict_counts(having).items():
                if code == "healthy":
                    continue
                association = Association(code, name, label, len(having), count)
                lift = association.share / (overall[code] / total)
                if association.share >= MIN_SHARE and lift >= MIN_LIFT:
                    found.append(association)
    found.sort(key=lambda a: (-a.share, -a.trials, a.verdict, a.hyperparameter))
    return found
