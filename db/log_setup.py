"""How the service logs: the level of its own loggers, text or JSON lines (one object per line,
for a deployment's log collector), and third-party noise that says nothing to a user."""

from __future__ import annotations

import logging
import warnings
from typing import Literal

#: the loggers of the service's own packages.
SERVICE_LOGGERS = ("api", "db", "search_spaces", "worker")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LogFormat = Literal["text", "json"]


def formatter(log_format: LogFormat) -> logging.Formatter:
    """A formatter of ``log_format``: JSON lines with ``time``, ``level``, ``logger`` and
    ``message`` (python-json-logger), or the text format."""
    if log_format == "json":
        from pythonjsonlogger.core import RESERVED_ATTRS
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn repeats each message with terminal colours: not for a log collector
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )
    return logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: LogFormat) -> None:
    """Set ``level`` on the service's loggers; log to stderr if nothing else does; in JSON,
    every handler of the root logger writes JSON (uvicorn's and Celery's loggers pass to it)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(log_format))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    if log_format == "json":
        for handler in root.handlers:
            handler.setFormatter(formatter("json"))
        logging.captureWarnings(True)  # Python warnings too, as JSON lines (py.warnings)
        if logging.lastResort is not None:  # a logger that does not propagate, with no handler
            logging.lastResort.setFormatter(formatter("json"))
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).setLevel(level)
    quiet_third_parties()


#: the texts of scikit-learn's Gaussian-process ``ConvergenceWarning``s
GP_CONVERGENCE_MESSAGES = r"(The optimal value found for dimension|lbfgs failed to converge)"


def quiet_third_parties() -> None:
    """Warnings a user can do nothing about. scikit-learn's Gaussian process (Keras Tuner's
    Bayesian oracle) warns at most proposals that a length scale reached its bound, or that its
    optimizer stopped early: the search goes on as intended, the warning only fills the worker's
    log. Matched by module and text, so that no process imports scikit-learn for this (its
    import cost the Celery parent, the API and the CLI ~1.3 s and ~150 MB)."""
    warnings.filterwarnings(
        "ignore", message=GP_CONVERGENCE_MESSAGES, module=r"sklearn\.gaussian_process"
    )
