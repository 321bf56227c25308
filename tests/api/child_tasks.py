"""Functions the page-building child runs in tests/api/test_page_builder.py (a spawned process
imports them by module name, so they live at a module's top level)."""

from __future__ import annotations

import os
import time
from typing import Any

from api.errors import InputValidationError


def pid_after(settings: Any, seconds: float) -> int:
    """The process that ran this, after ``seconds``."""
    time.sleep(seconds)
    return os.getpid()


def invalid(settings: Any) -> None:
    """An API error whose ``__init__`` takes several arguments."""
    raise InputValidationError("rows", "at most 3 rows", 3, "too_long")
