"""The service's logging: JSON lines when asked, and no scikit-learn GP convergence noise."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF

from db.log_setup import configure, formatter


def _convergence_warnings(quiet: bool) -> list[warnings.WarningMessage]:
    """Fit a Gaussian process whose best length scale lies past its bounds (it warns so),
    after configuring the service's logging if ``quiet``."""
    x = np.linspace(0, 1, 12)[:, None]
    gp = GaussianProcessRegressor(kernel=RBF(1e-3, length_scale_bounds=(1e-5, 1e-3)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if quiet:
            configure("INFO", "text")
        gp.fit(x, np.sin(3 * x).ravel())
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_gaussian_process_convergence_warnings_are_silenced() -> None:
    assert _convergence_warnings(quiet=False), "the fit no longer warns: this checks nothing"
    assert _convergence_warnings(quiet=True) == []


def test_a_json_record_names_time_level_logger_and_message() -> None:
    record = logging.LogRecord("worker.attempt", logging.INFO, __file__, 1, "job %s", ("a",), None)
    line = json.loads(formatter("json").format(record))
    assert {k: line[k] for k in ("level", "logger", "message")} == {
        "level": "INFO",
        "logger": "worker.attempt",
        "message": "job a",
    }
    assert "time" in line
