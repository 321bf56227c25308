"""The dashboard's Jinja2 templates, their filters, and the versioned URLs of its assets."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from api.dashboard.assets import STATIC_URL, asset

HERE = Path(__file__).parent
#: the charting library's bundle (Apache ECharts, committed with its license and notice).
ECHARTS = "echarts-6.1.0.min.js"

templates = Jinja2Templates(directory=HERE / "templates")


def asset_url(name: str) -> str:
    """``/static/ui/<name>?v=<content hash>``: cached by browsers until the file changes."""
    found = asset(name)
    if found is None:
        raise FileNotFoundError(f"no dashboard asset {name!r}")
    return f"{STATIC_URL}/{name}?v={found.etag.strip(chr(34))[:12]}"


def score(value: float | None) -> str:
    """A score with four significant decimals, or a dash."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min 05 s``, ``12.3 s``, or a dash."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def moment(value: datetime | None) -> str:
    """A UTC timestamp to the second, or a dash."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def value(v: Any) -> str:
    """A hyperparameter's value, compact."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


templates.env.filters.update(score=score, duration=duration, moment=moment, value=value)
templates.env.globals.update(asset_url=asset_url, echarts=ECHARTS)
