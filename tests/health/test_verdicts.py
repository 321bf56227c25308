"""Verdicts on stored-looking records: each case the articles describe, and a healthy run."""

from __future__ import annotations

from typing import Any

from health.verdicts import EpochRecord, TrialFacts, judge


def _layer(name: str, act: str = "relu", **values: Any) -> dict[str, Any]:
    base = {"g": 0.5, "w": 3.0, "u": 0.01, "mean": 0.3, "std": 0.5, "dead": 0.0, "sat": None}
    return {"name": name, "act": act, "same": 0.0, **base, **values}


def _epochs(layers: list[dict[str, Any]], count: int = 4, **metrics: Any) -> list[EpochRecord]:
    rising = [{"accuracy": 0.6 + e / 20, "val_accuracy": 0.6 + e / 20} for e in range(count)]
    health = {"layers": layers, "out_std": 0.2}
    return [EpochRecord(e, {**rising[e], **metrics}, health) for e in range(count)]


def _codes(**facts: Any) -> list[str]:
    defaults: dict[str, Any] = {"objective": "val_accuracy", "maximize": True, "baseline": 0.35}
    return [v.code for v in judge(TrialFacts(**{**defaults, **facts}))]


def test_a_healthy_run() -> None:
    layers = [_layer("dense_0"), _layer("dense_1")]
    assert _codes(epochs=_epochs(layers), score=0.8, epochs_allowed=10) == ["healthy"]


def test_symmetric_dead_and_collapsed_from_a_zeros_init() -> None:
    layers = [_layer("dense_0", same=1.0, dead=1.0, g=0.0), _layer("dense_1", same=1.0, dead=1.0)]
    epochs = [
        EpochRecord(e, {"val_accuracy": 0.1}, {"layers": layers, "out_std": 0.0}) for e in range(3)
    ]
    codes = _codes(epochs=epochs, score=0.1, baseline=0.1)
    assert codes[:1] == ["symmetric_units"]
    assert "dead_units" in codes and "collapsed" in codes


def test_vanishing_gradients_of_a_deep_sigmoid_stack() -> None:
    layers = [_layer(f"dense_{i}", "sigmoid", g=10.0 ** (i - 6), sat=0.0) for i in range(6)]
    assert "vanishing_gradients" in _codes(epochs=_epochs(layers), score=0.7)
    # the same ratio on one epoch only does not decide
    mixed = _epochs(layers)[:1] + _epochs([_layer("dense_0"), _layer("dense_1")])[1:]
    assert "vanishing_gradients" not in _codes(epochs=mixed, score=0.7)


def test_exploding_and_diverged_name_their_likely_cause() -> None:
    before = {"layers": [_layer("dense_0", g=0.5), _layer("dense_1", g=0.4)], "out_std": 0.2}
    after = {"layers": [_layer("dense_0", g=5e4), _layer("dense_1", g=None)], "out_std": 0.2}
    verdicts = judge(
        TrialFacts(
            epochs=[EpochRecord(0, {}, before), EpochRecord(1, {}, after)],
            objective="val_accuracy",
            maximize=True,
            diverged=True,
            hyperparameters={"learning_rate": 1.0, "standardize": False},
        )
    )
    assert [v.code for v in verdicts][:2] == ["diverged", "exploding_gradients"]
    assert verdicts[0].evidence["likely_causes"] == [
        "learning rate 1.0",
        "no gradient clipping",
        "unscaled inputs",
    ]
    assert verdicts[1].evidence["layer"] == "dense_0" and verdicts[0].remedy


def test_saturated_tanh_units() -> None:
    layers = [_layer("dense_0", "tanh", sat=0.8, dead=None)]
    assert "saturated_units" in _codes(epochs=_epochs(layers), score=0.7)


def test_overfitting_and_still_improving() -> None:
    over = [
        EpochRecord(e, {"accuracy": 0.7 + e / 10, "val_accuracy": v})
        for e, v in enumerate([0.70, 0.75, 0.76, 0.74, 0.72])
    ]
    assert _codes(epochs=over, score=0.76) == ["overfitting"]
    climbing = [EpochRecord(e, {"val_accuracy": 0.5 + e / 20}) for e in range(6)]
    assert _codes(epochs=climbing, score=0.75, epochs_allowed=6) == ["still_improving"]
    # stopped early: not at the limit, so not "still improving"
    assert _codes(epochs=climbing, score=0.75, epochs_allowed=20) == ["healthy"]


def test_a_regression_at_the_mean_prediction_collapsed() -> None:
    epochs = [EpochRecord(e, {"val_loss": 1.0}) for e in range(3)]
    codes = _codes(epochs=epochs, objective="val_loss", maximize=False, baseline=1.0, score=1.002)
    assert codes == ["collapsed"]


def test_the_baseline_is_what_a_constant_prediction_scores() -> None:
    import numpy as np

    from health.baseline import constant_baseline

    y_train, y_val = np.array([0, 0, 0, 1]), np.array([0, 1, 1, 0])
    assert constant_baseline("val_accuracy", True, y_train, y_val) == 0.5
    loss = constant_baseline("val_loss", True, y_train, y_val)
    assert loss == np.mean(-np.log([0.75, 0.25, 0.25, 0.75]))
    assert constant_baseline("val_auc", True, y_train, y_val) == 0.5
    regression = constant_baseline("val_loss", False, np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    assert regression == (0.0 + 4.0) / 2
    assert constant_baseline("val_mae", False, np.array([1.0, 2.0, 9.0]), np.array([2.0])) == 0.0
    assert constant_baseline("val_precision", True, y_train, y_val) is None


def test_large_gradients_that_fall_are_not_exploding() -> None:
    # a regression on unscaled targets: gradients start huge and fall with the loss
    falling = [
        EpochRecord(
            e,
            {"val_loss": 2.5e4 / (e + 1)},
            {"layers": [_layer("dense_0", g=2e3 / (e + 1))], "out_std": 30.0, "y_std": 70.0},
        )
        for e in range(4)
    ]
    codes = _codes(epochs=falling, objective="val_loss", maximize=False, baseline=5e3, score=6e3)
    assert "exploding_gradients" not in codes


def test_a_loss_a_little_above_training_is_not_overfitting() -> None:
    epochs = [
        EpochRecord(e, {"loss": t, "val_loss": v})
        for e, (t, v) in enumerate(
            [(0.5, 0.45), (0.4, 0.36), (0.33, 0.33), (0.3, 0.34), (0.29, 0.345)]
        )
    ]
    codes = _codes(epochs=epochs, objective="val_loss", maximize=False, baseline=0.69, score=0.33)
    assert codes == ["healthy"]
    # far above training and well past its best: overfitting
    worse = [*epochs, EpochRecord(5, {"loss": 0.1, "val_loss": 0.45})]
    assert "overfitting" in _codes(
        epochs=worse, objective="val_loss", maximize=False, baseline=0.69, score=0.33
    )


def test_a_penalized_loss_is_not_compared_with_the_baseline() -> None:
    epochs = [
        EpochRecord(e, {"val_loss": 9.0}, {"layers": [_layer("dense_0")], "out_std": 0.2})
        for e in range(3)
    ]
    facts: dict[str, Any] = {"objective": "val_loss", "maximize": False, "baseline": 0.66}
    penalized = {"regularizer": "l1", "regularization_factor": 0.01}
    assert "collapsed" not in _codes(epochs=epochs, score=9.0, hyperparameters=penalized, **facts)
    assert "collapsed" in _codes(epochs=epochs, score=9.0, **facts)
