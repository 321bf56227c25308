"""Errors of the spec layer."""

from __future__ import annotations

from pydantic_core import PydanticCustomError


def SpecError(field: str, message: str, limit: object | None = None) -> PydanticCustomError:
    """A rule spanning several fields is broken; ``field`` is the dotted path to blame.

    Raised inside pydantic validators, it reaches API clients as a validation error of type
    ``spec_rule`` whose ``ctx`` holds ``field`` (and ``limit`` where one applies), so the 422 body
    names the field even for cross-field rules.
    """
    ctx: dict[str, object] = {"field": field, "message": message}
    if limit is not None:
        ctx["limit"] = limit
    return PydanticCustomError("spec_rule", "{field}: {message}", ctx)
