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

import functools
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic_core import CoreSchema

from search_spaces.limits import MAX_CHOICES

T = TypeVar("T")


@dataclass(frozen=True)
class Named:
    """The schema name of a value type (``Annotated[int, Field(...), Named("Units")]``): one
    OpenAPI component, and the names of the parameters made of it (``UnitsChoice``...)."""

    name: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return {**handler(source), "ref": self.name}  # type: ignore[typeddict-unknown-key]


def _type_name(value_type: Any) -> str:
    if value_type is bool:
        return "Bool"
    if value_type is Any:
        return "Any"
    if get_origin(value_type) is Annotated:
        for mark in get_args(value_type)[1:]:
            if isinstance(mark, Named):
                return mark.name
    raise TypeError(f"a parameter's value type needs a Named(...) mark: {value_type!r}")


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
    values: list[T] = Field(
        min_length=1, max_length=MAX_CHOICES, json_schema_extra={"uniqueItems": True}
    )

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
    # A bare value (not a {"type": ...} object) means "fixed to this value"; so does
    # {"value": ...} (the fixed form, whose "type" may be left out).
    if isinstance(value, dict) and "type" in value:
        return value
    if isinstance(value, dict) and set(value) == {"value"}:
        return {"type": "fixed", **value}
    if isinstance(value, BaseModel):
        return value
    return {"type": "fixed", "value": value}


_Shorthand = BeforeValidator(_fixed_shorthand)
_SUFFIXES: dict[type[BaseModel], str] = {
    Fixed: "Fixed",
    Choice: "Choice",
    IntRange: "Range",
    FloatRange: "Range",
}


class _ParamSchema:
    """A parameter's schema: any of the bare value (the shorthand) and its object forms. The
    validator (a union told apart by ``type``) is left as it is."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        forms = handler(core_schema)["oneOf"]
        fixed = handler.resolve_ref_schema(forms[0])
        return {"anyOf": [fixed["properties"]["value"], *forms]}


@functools.cache
def _forms(value_type: Any, *generics: type[BaseModel]) -> tuple[type[BaseModel], ...]:
    # Concrete subclasses named after the value type: clean schema names (UnitsChoice...).
    name = _type_name(value_type)
    return tuple(
        type(f"{name}{_SUFFIXES[g]}", (g[value_type],), {"__module__": __name__}) for g in generics
    )


def _param(value_type: Any, *generics: type[BaseModel]) -> Any:
    forms = _forms(value_type, *generics)
    return Annotated[
        Union[forms],  # noqa: UP007 (a union of a runtime tuple)
        Field(discriminator="type"),
        _Shorthand,
        _ParamSchema(),
    ]


def IntParam(value_type: Any) -> Any:
    """An integer parameter of ``value_type``: fixed, a choice list, or an int range."""
    return _param(value_type, Fixed, Choice, IntRange)


def FloatParam(value_type: Any) -> Any:
    """A float parameter of ``value_type``: fixed, a choice list, or a float range."""
    return _param(value_type, Fixed, Choice, FloatRange)


def CatParam(value_type: Any) -> Any:
    """A categorical (or boolean) parameter of ``value_type``: fixed or a choice list."""
    return _param(value_type, Fixed, Choice)


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
