"""The labelled configurations of ``bench/health_verdicts.py``: the articles' cases (seeds/,
TECHNIQUES.md), each with the verdicts the articles say it should get.

A case's labels: ``expect``, the problem verdicts it must get (each counts for that verdict's
recall); ``allow``, verdicts that may come with them (neither right nor wrong: a net whose
units all died may also be judged collapsed); anything else it gets is a false positive of
that verdict. ``healthy``: a net the articles say trains well (the share of those flagged with
any problem is the false-alarm rate); ``False``: a net that must be flagged with something
(``expect`` or ``allow``); ``None``: neither (only its verdicts' precision counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEMS = (
    "symmetric_units",
    "dead_units",
    "saturated_units",
    "vanishing_gradients",
    "exploding_gradients",
    "collapsed",
    "diverged",
    "overfitting",
)
#: not a problem: the trial would have gone on improving (labelled where the articles say so).
NOTES = ("still_improving",)
#: full runs: what stopping a hopeless trial would save is simulated on them.
NO_STOP = {"early_stopping": {"enabled": False}, "stop_hopeless": {"enabled": False}}

FASHION = {
    "dataset": {"name": "fashion_mnist", "validation_split": 0.1, "max_rows": 6000},
    "model": {
        "input": {"flatten": True, "standardize": True},
        "layers": [300, 100, 50, 50, 50],
        "activation": "relu",
        "kernel_initializer": "glorot_uniform",
    },
    "optimizer": {"name": "sgd", "learning_rate": 1e-3, "momentum": 0.0},
    "training": {"epochs": 10, "batch_size": 32, **NO_STOP},
}
DIGITS = {
    "dataset": {"name": "digits", "validation_split": 0.2},
    "model": {
        "input": {"standardize": True},
        "depth": 2,
        "units": 64,
        "activation": "relu",
        "kernel_initializer": "he_normal",
    },
    "optimizer": {"name": "adam", "learning_rate": 1e-3},
    "training": {"epochs": 20, "batch_size": 32, **NO_STOP},
}
#: the dataset's name is the uploaded Pima CSV's reference, set when it is uploaded.
PIMA = {
    "dataset": {"name": "pima", "validation_split": 0.2},
    "model": {
        "input": {"standardize": True},
        "depth": 2,
        "units": 16,
        "activation": "relu",
        "kernel_initializer": "he_normal",
    },
    "optimizer": {"name": "rmsprop", "learning_rate": 1e-3},
    "training": {"epochs": 30, "batch_size": 16, **NO_STOP},
}
DIABETES = {
    "dataset": {"name": "diabetes", "validation_split": 0.2},
    "model": {
        "input": {"standardize": True},
        "depth": 2,
        "units": 32,
        "activation": "relu",
        "kernel_initializer": "he_normal",
    },
    "optimizer": {"name": "adam", "learning_rate": 0.05},
    "training": {"epochs": 100, "batch_size": 32, **NO_STOP},
}
BASES = {"fashion": FASHION, "digits": DIGITS, "pima": PIMA, "diabetes": DIABETES}
#: every problem but divergence: what a clipped high learning rate may still show.
NOT_DIVERGED = tuple(p for p in PROBLEMS if p not in ("diverged", "exploding_gradients"))
BLOWN_UP = ("diverged", "exploding_gradients", "collapsed", "dead_units")


@dataclass(frozen=True)
class Case:
    """One labelled configuration: a base spec (``BASES``) patched."""

    name: str
    base: str
    patch: dict[str, Any]
    expect: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    healthy: bool | None = None
    source: str = ""


def _sgd(rate: float, **extra: Any) -> dict[str, Any]:
    return {"optimizer": {"name": "sgd", "learning_rate": rate, "momentum": 0.0, **extra}}


def _model(**model: Any) -> dict[str, Any]:
    return {"model": model}


SIGMOID_10 = {"layers": [100] * 10, "activation": "sigmoid"}
CASES: tuple[Case, ...] = (
    # Fashion-MNIST, the articles' 300-100-50-50-50 net with SGD at 1e-3 (seed 000's table)
    Case("fashion: zeros init", "fashion", _model(kernel_initializer="zeros"),
         ("symmetric_units", "collapsed"), ("dead_units", "vanishing_gradients", "still_improving"),
         False, "seed 000: zeros or ones init, 9.25%"),
    Case("fashion: ones init", "fashion", _model(kernel_initializer="ones"),
         ("symmetric_units",), (*BLOWN_UP, "saturated_units", "still_improving"), False,
         "seed 000: zeros or ones init, 9.25%"),
    Case("fashion: Keras defaults (glorot_uniform, relu)", "fashion", {}, (),
         ("still_improving",), True, "seed 000: 85.18%"),
    Case("fashion: he_normal", "fashion", _model(kernel_initializer="he_normal"), (),
         ("still_improving",), True, "seed 000: 86.37%"),
    Case("fashion: leaky relu", "fashion",
         _model(activation="leaky_relu", kernel_initializer="he_normal"), (),
         ("still_improving",), True, "seed 000: 86.15%"),
    Case("fashion: randomized leaky relu", "fashion",
         _model(activation="rrelu", kernel_initializer="he_normal"), (),
         ("still_improving",), True, "seed 000: 86.30%"),
    Case("fashion: selu with its conditions", "fashion",
         _model(activation="selu", kernel_initializer="lecun_normal"), (),
         ("still_improving",), True, "seed 000: 86.47%"),
    Case("fashion: batch norm before + he_normal", "fashion",
         _model(batch_norm="before", kernel_initializer="he_normal"), (),
         ("still_improving",), True, "seed 000: 86.85%"),
    Case("fashion: selu without its conditions (raw pixels, glorot, dropout)", "fashion",
         _model(activation="selu", input={"flatten": True, "standardize": False}, dropout=0.2),
         (), (*BLOWN_UP, "still_improving"), False, "TECHNIQUES: SELU's conditions"),
    Case("fashion: 10 sigmoid layers, normal(0, 1) init", "fashion",
         _model(**SIGMOID_10, kernel_initializer="variance_scaling",
                variance_scaling={"scale": 100.0, "distribution": "untruncated_normal"}),
         ("saturated_units", "vanishing_gradients"), ("collapsed", "still_improving"), False,
         "TECHNIQUES: vanishing gradients, sigmoid with normal(0, 1)"),
    Case("fashion: 10 sigmoid layers, glorot", "fashion",
         _model(**SIGMOID_10, kernel_initializer="glorot_uniform"),
         ("vanishing_gradients",), ("collapsed", "saturated_units", "still_improving"), False,
         "TECHNIQUES: sigmoid/tanh in many hidden layers"),
    Case("fashion: relu, SGD lr 1 unclipped", "fashion",
         {**_model(kernel_initializer="he_normal"), **_sgd(1.0)}, (), BLOWN_UP, False,
         "TECHNIQUES: exploding gradients"),
    Case("fashion: relu, SGD lr 1, clipnorm 1", "fashion",
         {**_model(kernel_initializer="he_normal"),
          **_sgd(1.0, clipping="clipnorm", clip_threshold=1.0)},
         (), NOT_DIVERGED + NOTES, None, "TECHNIQUES: clipping keeps the direction"),
    Case("fashion: relu, adam lr 0.05", "fashion",
         {**_model(kernel_initializer="he_normal"),
          "optimizer": {"name": "adam", "learning_rate": 0.05}},
         ("dead_units",), ("collapsed", "still_improving"), False,
         "TECHNIQUES: ReLU with a high learning rate risks dying neurons"),
    # Pima diabetes (seed 004): the optimizers that stall, unscaled inputs
    Case("pima: rmsprop", "pima", {}, (), ("still_improving",), True, "seed 004: ~82%"),
    Case("pima: adam", "pima", {"optimizer": {"name": "adam", "learning_rate": 1e-3}}, (),
         ("still_improving",), True, "seed 004"),
    Case("pima: adadelta", "pima", {"optimizer": {"name": "adadelta", "learning_rate": 1e-3}},
         ("collapsed",), ("still_improving",), False, "issue: adadelta barely moves"),
    Case("pima: SGD lr 1e-3", "pima", _sgd(1e-3), ("collapsed",), ("still_improving",), False,
         "issue: SGD at 1e-3 barely moves"),
    Case("pima: unscaled inputs, SGD lr 0.5", "pima",
         {**_model(input={"standardize": False}), **_sgd(0.5)}, (), BLOWN_UP, False,
         "issue: a loss of 2e30 in epoch 0, every trial at the majority rate"),
    Case("pima: 10 sigmoid layers", "pima",
         _model(depth=10, activation="sigmoid", kernel_initializer="glorot_uniform"),
         ("collapsed",), ("vanishing_gradients", "saturated_units", "still_improving"), False,
         "issue: deep tanh/sigmoid stacks stall"),
    # digits: nets that train well, one that overfits, SGD at lr 1 with and without clipping
    Case("digits: he_normal relu, adam", "digits", {}, (), ("still_improving",), True),
    Case("digits: batch norm before", "digits", _model(batch_norm="before"), (),
         ("still_improving",), True),
    Case("digits: 8 tanh layers, glorot", "digits",
         _model(depth=8, activation="tanh", kernel_initializer="glorot_uniform"), (),
         ("still_improving",), True),
    Case("digits: elu, he_normal", "digits", _model(activation="elu"), (),
         ("still_improving",), True),
    # first 2 x 512 on 400 rows at 1e-3, 150 epochs: training loss 1e-4, validation 0.07-0.10
    # but only 0-6% above its best (memorized, yet not getting worse): not labelled overfitting
    Case("digits: 3 x 512 on 300 rows, adam 3e-3, 200 epochs", "digits",
         {"dataset": {"max_rows": 300}, "model": {"depth": 3, "units": 512},
          "optimizer": {"learning_rate": 3e-3},
          "training": {"epochs": 200}, "search": {"objective": "val_loss"}},
         ("overfitting",), ("still_improving",), False,
         "TECHNIQUES: a growing train/validation gap"),
    Case("digits: SGD lr 1 unclipped", "digits", _sgd(1.0), (), BLOWN_UP, False),
    Case("digits: SGD lr 1, clipnorm 1", "digits",
         _sgd(1.0, clipping="clipnorm", clip_threshold=1.0), (), NOT_DIVERGED + NOTES, None),
    # a regression (scikit-learn's diabetes, targets ~25-346)
    Case("diabetes: relu, adam, early stopping", "diabetes",
         {"optimizer": {"learning_rate": 0.01},
          "training": {"early_stopping": {"enabled": True, "patience": 10}}},
         (), ("still_improving",), True),
    # first labelled healthy: its validation loss ended 14-18% above its best while training
    # fell, and half a layer's units died (adam at 0.05): the verdicts were right
    Case("diabetes: relu, adam 0.05, 100 epochs without early stopping", "diabetes", {},
         ("overfitting",), ("dead_units", "still_improving"), False),
    Case("diabetes: SGD lr 1e-6", "diabetes", _sgd(1e-6), ("collapsed",),
         ("still_improving",), False),
)  # fmt: skip
