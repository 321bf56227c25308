"""One hidden layer fixed in a spec: ``model.layers`` holds a layer's units (a bare number) or a
``LayerSpec`` that also fixes that layer's activation, initializer, batch norm or dropout.

A value one layer fixes makes that parameter per layer (as if listed in ``model.per_layer``):
the layers that do not fix it take the model's parameter, each searched on its own. This is how
any trial of a search, per-layer values included, can be written back as a spec.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
    model_validator,
)

from search_spaces.errors import SpecError
from search_spaces.params import StrictModel
from search_spaces.vocabulary import (
    Activation,
    BatchNormPlacement,
    FanMode,
    Initializer,
    Rate,
    ScaleDistribution,
    UnitInterval,
    Units,
    VarianceScale,
)

HE_ACTIVATIONS = frozenset({"relu", "leaky_relu", "prelu", "rrelu", "elu", "gelu", "swish"})

#: the per-layer parameters a layer can fix.
LAYER_PARAMETERS = ("activation", "kernel_initializer", "batch_norm", "dropout")
#: a child a layer may fix -> its parent, and the parent's value that uses it.
CHILD_NEEDS = {
    "leaky_alpha": ("activation", "leaky_relu"),
    "rrelu_lower": ("activation", "rrelu"),
    "rrelu_upper": ("activation", "rrelu"),
    "variance_scaling": ("kernel_initializer", "variance_scaling"),
}
#: each parameter with children -> its children.
CHILDREN = {
    parent: tuple(child for child, (p, _) in CHILD_NEEDS.items() if p == parent)
    for parent in dict.fromkeys(p for p, _ in CHILD_NEEDS.values())
}


class LayerVarianceScaling(StrictModel):
    """The ``variance_scaling`` initializer's arguments for one layer."""

    scale: VarianceScale = 1.0
    mode: FanMode = "fan_in"
    distribution: ScaleDistribution = "truncated_normal"


class LayerSpec(StrictModel):
    """One hidden layer: its units, and whatever else it fixes (unset: the model's value)."""

    units: Units
    activation: Activation | None = None
    leaky_alpha: UnitInterval | None = Field(default=None, description="With leaky_relu.")
    rrelu_lower: UnitInterval | None = Field(default=None, description="With rrelu.")
    rrelu_upper: UnitInterval | None = Field(default=None, description="With rrelu.")
    kernel_initializer: Initializer | None = None
    variance_scaling: LayerVarianceScaling | None = Field(
        default=None, description="With kernel_initializer variance_scaling."
    )
    batch_norm: BatchNormPlacement | None = None
    dropout: Rate | None = None

    @model_validator(mode="after")
    def _children_with_their_parent(self) -> LayerSpec:
        for child, (parent, value) in CHILD_NEEDS.items():
            if getattr(self, child) is not None and getattr(self, parent) != value:
                raise SpecError(f"layers.{child}", f"{child} needs this layer's {parent}: {value}")
        return self

    @model_serializer(mode="wrap")
    def _bare_units(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A layer that fixes nothing but its units is written as the number, as it was given.
        data = {k: v for k, v in handler(self).items() if v is not None}
        return data["units"] if set(data) == {"units"} else data

    def fixes(self, parameter: str) -> bool:
        """Whether this layer fixes ``parameter`` (a LAYER_PARAMETERS name)."""
        return getattr(self, parameter) is not None


def _entry_kind(entry: Any) -> str:
    return "layer" if isinstance(entry, dict | LayerSpec) else "units"


#: a ``model.layers`` entry: its units, or a layer object; an error names only the form given.
LayerEntry = Annotated[
    Annotated[Units, Tag("units")] | Annotated[LayerSpec, Tag("layer")],
    Discriminator(_entry_kind),
]


def as_layer(entry: int | LayerSpec) -> LayerSpec:
    """A ``model.layers`` entry as a ``LayerSpec`` (a bare number is its units)."""
    return entry if isinstance(entry, LayerSpec) else LayerSpec(units=entry)


def auto_initializer(activation: str) -> str:
    """The init ``auto`` means with ``activation``: He for ReLU-like, LeCun for SELU, Glorot
    else."""
    if activation == "selu":
        return "lecun_normal"
    if activation in HE_ACTIVATIONS:
        return "he_normal"
    return "glorot_uniform"
