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
#: characters no name may hold: Unicode's control (Cc), format (Cf: bidi overrides like U+202E,
#: zero-width spaces), line and paragraph separator characters (Unicode 14). A lone surrogate
#: (Cs) never gets this far: it is not a valid string to the validator.
UNPRINTABLE_RANGES: list[tuple[int, int]] = [
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
]  # fmt: skip


def _escape(code: int) -> str:
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


_REFUSED = r"/\\" + "".join(
    f"{_escape(a)}-{_escape(b)}" if a != b else _escape(a) for a, b in UNPRINTABLE_RANGES
)
#: names the service stores (job and dataset names) are labels, never paths: they start with a
#: visible character and hold none of ``UNPRINTABLE_RANGES`` and no path separator.
NAME_PATTERN = rf"^[^\s{_REFUSED}][^{_REFUSED}]*$"
NAME_RULE = (
    "a name starts with a visible character and holds no control or format character (line "
    "breaks, bidirectional overrides, zero-width spaces), no slash and no backslash"
)
MAX_PIECEWISE_BOUNDARIES = 16
#: points of a grid search (its parameters' value counts multiplied), checked at submission.
MAX_GRID_POINTS = 100_000
MAX_SEED = 2**31 - 1
#: a technique study's variants, and the seeds each is trained with.
MAX_STUDY_VARIANTS = 20
MAX_STUDY_SEEDS = 10

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
    "max_study_variants": MAX_STUDY_VARIANTS,
    "max_study_seeds": MAX_STUDY_SEEDS,
}
