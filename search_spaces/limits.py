"""Hard limits on everything a spec can make the service spend. Enforced at submission (HTTP 422).

Each limit is documented in the README's "Limits" table; change both together.
"""

MAX_TRIALS = 2000
MAX_EXECUTIONS_PER_TRIAL = 5
MAX_LAYERS = 20
MAX_UNITS = 4096
MAX_EPOCHS = 500
MAX_BATCH_SIZE = 8192
MAX_CHOICES = 32
MAX_TOP_K = 5
MAX_ROWS = 100_000
#: worst-case trainable parameters of any model the search space allows.
MAX_PARAMETERS = 20_000_000
MAX_TIME_LIMIT_S = 7 * 24 * 3600
MAX_NAME_LENGTH = 200
#: names the service stores (job and dataset names) are labels, never paths: no control
#: characters (NUL included) and no path separators.
NAME_PATTERN = r"^[^\x00-\x1f\x7f/\\]*$"
MAX_PIECEWISE_BOUNDARIES = 16
#: points of a grid search (its parameters' value counts multiplied), checked at submission.
MAX_GRID_POINTS = 100_000
MAX_SEED = 2**31 - 1

LIMITS: dict[str, int] = {
    "max_trials": MAX_TRIALS,
    "max_executions_per_trial": MAX_EXECUTIONS_PER_TRIAL,
    "max_layers": MAX_LAYERS,
    "max_units": MAX_UNITS,
    "max_epochs": MAX_EPOCHS,
    "max_batch_size": MAX_BATCH_SIZE,
    "max_choices": MAX_CHOICES,
    "max_top_k": MAX_TOP_K,
    "max_rows": MAX_ROWS,
    "max_parameters": MAX_PARAMETERS,
    "max_time_limit_s": MAX_TIME_LIMIT_S,
    "max_grid_points": MAX_GRID_POINTS,
}
