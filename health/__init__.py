"""Training health: what a trial's network shows while it trains (``signals``: per-layer
statistics of a probe batch) and what they mean (verdicts, with their evidence and the articles'
remedies). Pure Python and numpy: no TensorFlow, no database, so the worker records the signals,
and the API and the benchmarks read them and judge them again."""
