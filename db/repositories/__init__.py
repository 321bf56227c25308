"""Every query the service runs, one module per aggregate: ``jobs``, ``trials`` (a worker's
attempt), ``leaderboard`` (a job's trials counted and ranked), ``artifacts`` (stored models and
checkpoints), ``uploads``, ``owners`` and ``recovery`` (the reaper's).

The rules they keep:
- A function takes a ``Session`` (its caller owns the transaction: the API's request, or a
  dispatch holding the job's lock) or opens ONE transaction of its own, named by its
  ``@retried(...)`` label. A function that opens its own transaction is safe to run again from
  its start, and is run again after a transient database error (``db.transient``).
- A worker's writes to a trial it runs are conditional on its lease (``trials.lease``) in the
  same statement: a worker whose trial was taken back writes nothing.
- No lock is waited for without a bound: ``lock_timeout`` on PostgreSQL, the reaper skips rows
  another session holds (``SKIP LOCKED``).
"""
