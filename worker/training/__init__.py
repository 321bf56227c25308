"""Everything of the worker that imports TensorFlow, Keras or Keras Tuner, and nothing else.

The trial's fit loop (``fit``), the batches it trains on (``feeding``), the datasets
(``datasets``), the search algorithms (``oracle``), serialised models (``artifacts``) and the
per-process cache that ties them together for one claimed trial (``run``). It writes nothing to
the database: what a trial records goes through the hooks the caller (``worker.attempt``) hands
in; it only reads a job's spec and uploaded dataset through ``db.repositories``.

Only pool processes import this package, after the fork: TensorFlow is not fork-safe, so the
Celery parent (``celery_app``, ``tasks``, ``reaper``) never does (tests/worker/test_boundaries.py).
"""
