"""The field a mistyped name probably meant: ``model.learnin_rate`` -> ``learning_rate``."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation may hold (through Optional, unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType, list, Annotated):
        args = get_args(annotation)[:1] if origin is Annotated else get_args(annotation)
        return [model for arg in args for model in _models_in(arg)]
    return []


def _step(models: list[type[BaseModel]], part: str | int) -> list[type[BaseModel]]:
    if isinstance(part, int):  # a list index: the same models
        return models
    found = []
    for model in models:
        field = model.model_fields.get(part)
        if field is not None:
            found += _models_in(field.annotation)
            continue
        # a union's tag in the location (``int``, ``choice``...): the form it names
        type_field = model.model_fields.get("type")
        if type_field is not None and part in get_args(type_field.annotation):
            found.append(model)
    return found or models


def did_you_mean(root: type[BaseModel], location: Sequence[str | int]) -> str | None:
    """For an unknown field at ``location`` (its last part), the closest name the model it sits
    in knows, or None."""
    *path, unknown = location
    if not isinstance(unknown, str):
        return None
    models = [root]
    for part in path:
        models = _step(models, part)
    names = {name for model in models for name in model.model_fields}
    close = difflib.get_close_matches(unknown, sorted(names), n=1, cutoff=0.6)
    return close[0] if close else None
