"""Search-space parameters: each technique is either fixed to one value or searched.

In a spec a parameter is written as one of::

    64                                                   # fixed (shorthand)
    {"type": "fixed", "value": 64}
    {"type": "choice", "values": ["relu", "selu"]}
    {"type": "int", "min": 8, "max": 128, "step": 8}
    {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"}

The value type (and its bounds) comes from the field the parameter sits in, so
``{"type": "int", "min": 1, "max": 100000}`` for ``units`` fails with the units limit.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from search_spaces.limits import MAX_CHOICES

T = TypeVar("T")


class StrictModel(BaseModel):
    """Base of every spec model: unknown fields are an error, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)


class Fixed(StrictModel, Generic[T]):
    type: Literal["fixed"] = "fixed"
    value: T

    def candidates(self) -> list[T]:
        return [self.value]


class Choice(StrictModel, Generic[T]):
    type: Literal["choice"]
    values: list[T] = Field(min_length=1, max_length=MAX_CHOICES)

    @model_validator(mode="after")
    def _unique(self) -> Choice[T]:
        if len(set(map(repr, self.values))) != len(self.values):
            raise ValueError("choice values must be unique")
        return self

    def candidates(self) -> list[T]:
        return list(self.values)


class IntRange(StrictModel, Generic[T]):
    type: Literal["int"]
    min: T
    max: T
    step: int = Field(default=1, ge=1)
    sampling: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _ordered(self) -> IntRange[T]:
        if self.max < self.min:  # type: ignore[operator]
            raise ValueError("max must be >= min")
        if self.sampling == "log" and self.min <= 0:  # type: ignore[operator]
            raise ValueError("log sampling needs min > 0")
        return self

    def candidates(self) -> list[T]:
        return list(range(self.min, self.max + 1, self.step))  # type: ignore[call-overload]


class FloatRange(StrictModel, Generic[T]):
    type: Literal["float"]
    min: T
    max: T
    step: float | None = Field(default=None, gt=0)
    sampling: Literal["linear", "log", "reverse_log"] = "linear"

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange[T]:
        if self.max < self.min:  # type: ignore[operator]
            raise ValueError("max must be >= min")
        if self.sampling != "linear" and self.min <= 0:  # type: ignore[operator]
            raise ValueError("log sampling needs min > 0")
        if self.sampling != "linear" and self.step is not None and self.step <= 1:
            raise ValueError("with log sampling, step multiplies: it must be > 1")
        return self

    def candidates(self) -> list[T]:
        """The two ends of the range (a continuous range has no finite list)."""
        return [self.min, self.max]


def _fixed_shorthand(value: Any) -> Any:
    # A bare value (not a {"type": ...} object) means "fixed to this value".
    if isinstance(value, dict) and "type" in value:
        return value
    if isinstance(value, BaseModel):
        return value
    return {"type": "fixed", "value": value}


_Shorthand = BeforeValidator(_fixed_shorthand)


def IntParam(value_type: Any) -> Any:
    """An integer parameter of ``value_type``: fixed, a choice list, or an int range."""
    return Annotated[
        Fixed[value_type] | Choice[value_type] | IntRange[value_type],
        Field(discriminator="type"),
        _Shorthand,
    ]


def FloatParam(value_type: Any) -> Any:
    """A float parameter of ``value_type``: fixed, a choice list, or a float range."""
    return Annotated[
        Fixed[value_type] | Choice[value_type] | FloatRange[value_type],
        Field(discriminator="type"),
        _Shorthand,
    ]


def CatParam(value_type: Any) -> Any:
    """A categorical (or boolean) parameter of ``value_type``: fixed or a choice list."""
    return Annotated[
        Fixed[value_type] | Choice[value_type], Field(discriminator="type"), _Shorthand
    ]


AnyParam = Fixed[Any] | Choice[Any] | IntRange[Any] | FloatRange[Any]


def is_fixed(param: AnyParam) -> bool:
    """True if the parameter has exactly one possible value."""
    if isinstance(param, Fixed):
        return True
    if isinstance(param, Choice):
        return len(param.values) == 1
    return param.min == param.max


def fixed_value(param: AnyParam) -> Any:
    """The one value of a fixed parameter (ValueError otherwise)."""
    if not is_fixed(param):
        raise ValueError("parameter is searched, not fixed")
    return param.candidates()[0]


def upper_bound(param: AnyParam) -> Any:
    """The largest value the parameter can take (for resource bounds)."""
    return max(param.candidates())


def is_finite(param: AnyParam) -> bool:
    """True if the parameter has a finite list of values (a grid search needs this)."""
    return not (isinstance(param, FloatRange) and param.step is None)
