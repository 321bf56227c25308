"""A study's statistics against scipy's own tests, and its result from trials."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from studies.curves import mean_curves
from studies.result import StudyTrial, study_result
from studies.stats import summarize, welch


def test_the_interval_of_a_mean_is_students() -> None:
    values = [0.851, 0.858, 0.846, 0.862]
    found = summarize(values, 0.95)
    low, high = stats.t.interval(0.95, 3, loc=found.mean, scale=stats.sem(values))
    assert found.n == 4 and found.low == pytest.approx(low) and found.high == pytest.approx(high)
    assert found.std == pytest.approx(stats.tstd(values))
    assert summarize([0.5], 0.95).low is None  # one seed: no interval
    assert summarize([None, math.nan], 0.95).n == 0


def test_welch_matches_scipy_and_says_when_a_difference_is_beyond_noise() -> None:
    better, baseline = [0.868, 0.870, 0.867], [0.861, 0.859, 0.860]
    found = welch(better, baseline, 0.95)
    expected = stats.ttest_ind(better, baseline, equal_var=False)
    assert found.p_value == pytest.approx(expected.pvalue)
    assert found.delta == pytest.approx(0.0083333, rel=1e-4)
    assert found.beyond_noise and found.low > 0
    noisy = welch([0.86, 0.87, 0.85], [0.855, 0.865, 0.86], 0.95)
    assert noisy.beyond_noise is False and noisy.low < 0 < noisy.high
    assert welch([0.8], [0.7, 0.71], 0.95).beyond_noise is None


def _trial(variant: str, seed: int, score: float | None, status: str = "completed") -> StudyTrial:
    return StudyTrial(variant, seed, status, score, 2.0 + seed, 4)


def test_a_study_result_reads_each_variant_against_the_baseline() -> None:
    trials = [
        *(_trial("he_normal", s, v) for s, v in enumerate([0.860, 0.861, 0.859])),
        *(_trial("batch_norm", s, v) for s, v in enumerate([0.868, 0.870, 0.869])),
        *(_trial("leaky", s, v) for s, v in enumerate([0.858, 0.864, 0.861])),
        _trial("zeros", 0, 0.1, "pruned"),
        _trial("zeros", 1, None, "diverged"),
    ]
    variants = {"he_normal": {}, "batch_norm": {"model": {"batch_norm": "before"}},
                "leaky": {}, "zeros": {}}  # fmt: skip
    result = study_result(variants, "he_normal", 3, 0.95, "val_accuracy", True, trials)
    rows = {r["name"]: r for r in result["variants"]}
    assert list(rows) == list(variants) and rows["he_normal"]["is_baseline"]
    assert "vs_baseline" not in rows["he_normal"]
    assert rows["batch_norm"]["objective"]["mean"] == pytest.approx(0.869)
    assert rows["batch_norm"]["epochs_to_best"]["mean"] == 5  # best epoch 4 is the fifth
    assert "better, beyond seed noise" in rows["batch_norm"]["reading"]
    assert "+0.90 points" in rows["batch_norm"]["reading"]
    assert "within seed noise" in rows["leaky"]["reading"]
    zeros = rows["zeros"]
    assert zeros["trials"]["pruned"] == 1 and zeros["trials"]["diverged"] == 1
    assert zeros["trials"]["running"] == 0 and zeros["objective"]["n"] == 1
    assert "too few seeds" in zeros["reading"]
    assert result["trials_ended"] == 11 and result["trials_planned"] == 12
    assert result["reading"][0].startswith("batch_norm:")


def test_a_minimized_objective_is_better_when_lower() -> None:
    trials = [_trial("a", s, v) for s, v in enumerate([10.0, 10.2, 9.9])]
    trials += [_trial("b", s, v) for s, v in enumerate([8.0, 8.1, 7.9])]
    result = study_result({"a": {}, "b": {}}, "a", 3, 0.95, "val_loss", False, trials)
    assert "b: -2.033 of val_loss vs a: better, beyond seed noise" in result["reading"][0]


def test_mean_curves_average_the_seeds_that_reached_each_epoch() -> None:
    curves = mean_curves({0: "a", 1: "a", 2: "b"}, {0: [0.5, 0.7], 1: [0.6, 0.8, 0.9], 2: [None]})
    assert curves["a"] == pytest.approx([0.55, 0.75, 0.9])
    assert curves["b"] == [None]


def test_holm_adjusts_each_p_value_for_the_family() -> None:
    from studies.stats import holm

    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    trials = [_trial("base", s, v) for s, v in enumerate([0.860, 0.861, 0.859])]
    for name, scores in {"a": [0.863, 0.866, 0.864], "b": [0.861, 0.858, 0.862],
                         "c": [0.859, 0.863, 0.860]}.items():  # fmt: skip
        trials += [_trial(name, s, v) for s, v in enumerate(scores)]
    variants = {"base": {}, "a": {}, "b": {}, "c": {}}
    result = study_result(variants, "base", 3, 0.95, "val_accuracy", True, trials)
    a = result["variants"][1]
    assert a["vs_baseline"]["objective"]["beyond_noise"] is True
    assert a["vs_baseline"]["objective"]["p_holm"] > a["vs_baseline"]["objective"]["p_value"]
    assert a["vs_baseline"]["objective"]["beyond_noise_holm"] is False  # p 0.02, three tests
    assert "though not once corrected for the 3 comparisons" in a["reading"]
