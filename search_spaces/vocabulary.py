"""The words and bounded numbers a spec is written in: every name a technique may take, and the
number types whose bounds come from ``limits.py``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from search_spaces import limits
from search_spaces.params import Named

Activation = Annotated[
    Literal[
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
    ],
    Named("Activation"),
]
Initializer = Annotated[
    Literal[
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
    ],
    Named("Initializer"),
]
BatchNormPlacement = Annotated[
    Literal["none", "before", "after", "before_dense"],
    Named("BatchNormPlacement"),
]
SplitMethod = Annotated[
    Literal["stratified", "last"],
    Named("SplitMethod"),
]
DropoutKind = Annotated[
    Literal["dropout", "alpha_dropout"],
    Named("DropoutKind"),
]
Regularizer = Annotated[
    Literal["none", "l1", "l2", "l1_l2"],
    Named("Regularizer"),
]
OptimizerName = Annotated[
    Literal[
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
    ],
    Named("OptimizerName"),
]
Clipping = Annotated[
    Literal["none", "clipvalue", "clipnorm", "global_clipnorm"],
    Named("Clipping"),
]
ScheduleKind = Annotated[
    Literal["constant", "power", "exponential", "piecewise", "plateau", "one_cycle"],
    Named("ScheduleKind"),
]
RegressionLoss = Annotated[
    Literal["mse", "mae", "huber"],
    Named("RegressionLoss"),
]
Algorithm = Annotated[
    Literal["random", "bayesian", "tpe", "hyperband", "grid"],
    Named("Algorithm"),
]
PerLayer = Annotated[
    Literal["units", "activation", "kernel_initializer", "batch_norm", "dropout"],
    Named("PerLayer"),
]

Units = Annotated[int, Field(ge=1, le=limits.MAX_UNITS), Named("Units")]
Depth = Annotated[int, Field(ge=1, le=limits.MAX_LAYERS), Named("Depth")]
Epochs = Annotated[int, Field(ge=1, le=limits.MAX_EPOCHS), Named("Epochs")]
BatchSize = Annotated[int, Field(ge=1, le=limits.MAX_BATCH_SIZE), Named("BatchSize")]
Rate = Annotated[float, Field(ge=0.0, le=0.9), Named("Rate")]
UnitInterval = Annotated[float, Field(ge=0.0, le=1.0), Named("UnitInterval")]
Beta = Annotated[float, Field(ge=0.0, lt=1.0), Named("Beta")]
LearningRate = Annotated[float, Field(gt=0.0, le=10.0), Named("LearningRate")]
PenaltyFactor = Annotated[float, Field(ge=0.0, le=1.0), Named("PenaltyFactor")]
Positive = Annotated[float, Field(gt=0.0, le=1e6), Named("Positive")]
NonNegative = Annotated[float, Field(ge=0.0, le=1e6), Named("NonNegative")]
Patience = Annotated[int, Field(ge=0, le=limits.MAX_EPOCHS), Named("Patience")]
Seed = Annotated[int, Field(ge=0, le=limits.MAX_SEED), Named("Seed")]
DecayEpochs = Annotated[float, Field(gt=0.0, le=limits.MAX_EPOCHS), Named("DecayEpochs")]
SchedulePower = Annotated[float, Field(gt=0.0, le=10.0), Named("SchedulePower")]
DecayFactor = Annotated[float, Field(gt=0.0, lt=1.0), Named("DecayFactor")]
VarianceScale = Annotated[float, Field(gt=0.0, le=100.0), Named("VarianceScale")]
FanMode = Annotated[Literal["fan_in", "fan_out", "fan_avg"], Named("FanMode")]
ScaleDistribution = Annotated[
    Literal["truncated_normal", "untruncated_normal", "uniform"], Named("ScaleDistribution")
]
