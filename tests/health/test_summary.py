"""A job's health summary: counts by verdict, and the values that go with one."""

from __future__ import annotations

from health.summary import JudgedTrial, associations, verdict_counts


def _pima_like() -> list[JudgedTrial]:
    """Adadelta always collapses; other optimizers mostly train; tanh stacks sometimes stall."""
    trials = []
    for n in range(30):
        optimizer = ["adadelta", "adam", "rmsprop"][n % 3]
        activation = ["relu", "tanh"][n % 2]
        codes = ["collapsed"] if optimizer == "adadelta" else ["healthy"]
        if optimizer == "adam" and n % 5 == 0:
            codes = ["overfitting"]
        params = {"optimizer": optimizer, "activation": activation, "learning_rate": 10 ** -(n % 4)}
        trials.append(JudgedTrial(params, codes))
    return trials


def test_counts_by_verdict() -> None:
    counts = verdict_counts(_pima_like())
    assert counts == {"healthy": 18, "collapsed": 10, "overfitting": 2}


def test_the_value_that_goes_with_a_verdict_is_named_with_its_remedy() -> None:
    found = associations(_pima_like())
    assert [(a.verdict, a.hyperparameter, a.value) for a in found] == [
        ("collapsed", "optimizer", "adadelta")
    ]
    (adadelta,) = found
    assert (adadelta.with_verdict, adadelta.trials) == (10, 10)
    assert adadelta.advice().startswith(
        "10 of 10 trials with optimizer=adadelta collapsed to a constant prediction: "
    )


def test_many_valued_numbers_are_grouped_into_thirds() -> None:
    trials = [
        JudgedTrial({"learning_rate": rate}, ["diverged"] if rate > 0.5 else ["healthy"])
        for rate in [0.001 * 1.5**k for k in range(24)]
    ]
    found = associations(trials)
    # thirds of the 24 rates: the top one (rates above 0.657) diverged every time
    assert [(a.verdict, a.value, a.trials, a.share) for a in found] == [
        ("diverged", "> 0.657", 7, 1.0)
    ]


def test_nothing_to_say_of_an_empty_or_uniform_job() -> None:
    assert associations([]) == []
    same = [JudgedTrial({"optimizer": "adam"}, ["collapsed"]) for _ in range(5)]
    assert associations(same) == []  # every trial took the value: nothing to tell apart
