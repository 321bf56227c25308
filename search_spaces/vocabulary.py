"""The words and bounded numbers a spec is written in: every name a technique may take, and the
number types whose bounds come from ``limits.py``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from search_spaces import limits

Activation = Literal[
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "tanh",
    "sigmoid",
    "linear",
]
Initializer = Literal[
    "auto",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "variance_scaling",
    "zeros",
    "ones",
    "random_normal",
]
BatchNormPlacement = Literal["none", "before", "after", "before_dense"]
SplitMethod = Literal["stratified", "last"]
DropoutKind = Literal["dropout", "alpha_dropout"]
Regularizer = Literal["none", "l1", "l2", "l1_l2"]
OptimizerName = Literal[
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "adadelta",
    "rmsprop",
    "adam",
    "adamw",
    "nadam",
    "adamax",
    "ftrl",
]
Clipping = Literal["none", "clipvalue", "clipnorm", "global_clipnorm"]
ScheduleKind = Literal["constant", "power", "exponential", "piecewise", "plateau", "one_cycle"]
RegressionLoss = Literal["mse", "mae", "huber"]
Algorithm = Literal["random", "bayesian", "hyperband", "grid"]
PerLayer = Literal["units", "activation", "kernel_initializer", "batch_norm", "dropout"]

Units = Annotated[int, Field(ge=1, le=limits.MAX_UNITS)]
Depth = Annotated[int, Field(ge=1, le=limits.MAX_LAYERS)]
Epochs = Annotated[int, Field(ge=1, le=limits.MAX_EPOCHS)]
BatchSize = Annotated[int, Field(ge=1, le=limits.MAX_BATCH_SIZE)]
Rate = Annotated[float, Field(ge=0.0, le=0.9)]
UnitInterval = Annotated[float, Field(ge=0.0, le=1.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
LearningRate = Annotated[float, Field(gt=0.0, le=10.0)]
PenaltyFactor = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0, le=1e6)]
NonNegative = Annotated[float, Field(ge=0.0, le=1e6)]
Patience = Annotated[int, Field(ge=0, le=limits.MAX_EPOCHS)]
Seed = Annotated[int, Field(ge=0, le=limits.MAX_SEED)]
