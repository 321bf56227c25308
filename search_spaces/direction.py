"""Which way an objective improves: the one place that knows that ``max`` beats ``min``."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

#: metrics that improve upwards; every other metric (losses, errors) improves downwards.
MAXIMISED_METRICS = ("accuracy", "auc")


class Direction(enum.StrEnum):
    """``min`` or ``max`` (equal to those strings, as stored on a job)."""

    MIN = "min"
    MAX = "max"

    @classmethod
    def of_objective(cls, objective: str) -> Direction:
        """``max`` for accuracy-like metrics, ``min`` for losses and errors."""
        return cls.MAX if objective.removeprefix("val_") in MAXIMISED_METRICS else cls.MIN

    def better(self, a: float, b: float | None) -> bool:
        """True if score ``a`` beats ``b`` (``None`` is beaten by anything)."""
        if b is None:
            return True
        return a > b if self is Direction.MAX else a < b

    def best(self, items: Iterable[T], key: Callable[[T], float]) -> T:
        """The best of ``items`` by ``key`` (the first one on ties)."""
        pick = max if self is Direction.MAX else min
        return pick(items, key=key)

    def worst(self, scores: Iterable[float]) -> float:
        """The worst of ``scores``."""
        return min(scores) if self is Direction.MAX else max(scores)

    def order(self, column: Any) -> Any:
        """A SQL ordering of ``column``, best first (``column.desc()`` or ``column.asc()``)."""
        return column.desc() if self is Direction.MAX else column.asc()
