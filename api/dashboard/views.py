"""What each dashboard page shows: read in one transaction, owner-scoped as the JSON API is
(another owner's job is not found), shaped into plain dicts for the templates and the live
JSON. No SQL here: the reads are ``db.repositories``'."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from api.dashboard import figures, health_figures, learning_curves
from api.dashboard.importance import Importances, cached_importances, fresh_importances
from api.dashboard.study_figures import study_view
from api.errors import NotFoundError, quoted_id
from api.services import datasets, transaction
from api.services.jobs import job_or_404
from api.services.studies import study_of
from db.models import Job, JobStatus, TrialStatus
from db.repositories import artifacts, dashboard, jobs
from db.repositories.dashboard import TrialRow
from db.settings import Settings
from db.values import as_utc, utcnow
from health.summary import associations, judged, verdict_counts
from search_spaces.datasets import UPLOAD_PREFIX

#: slice plots drawn on a job page (the first hyperparameters that vary).
MAX_SLICES = 12
#: trials whose curves the job page draws before the user picks any: the best ones.
DEFAULT_CURVES = 5
#: the most jobs one comparison overlays.
MAX_COMPARED = 8
#: lines of advice from the trials' verdicts on a job page.
MAX_HEALTH_ADVICE = 5
#: up to this many completed trials, a job's page data comes with its importance computed
#: afresh when due (~0.1 s here); past it, only with a fresh one, else the page asks for it.
INLINE_IMPORTANCE_TRIALS = 300


def job_state(job: Job, rows: Sequence[TrialRow]) -> dict[str, Any]:
    """Status, progress, best and an ETA (finished trials' pace applied to the rest)."""
    counts = {s.value: 0 for s in TrialStatus}
    for row in rows:
        counts[row.status.value] += 1
    done = sum(counts[s.value] for s in TrialStatus if s.informs_search)
    now = utcnow()
    started = as_utc(job.started_at)
    finished = as_utc(job.finished_at)
    elapsed = ((finished or now) - started).total_seconds() if started else None
    eta = None
    if job.status == JobStatus.RUNNING and elapsed and done:
        eta = elapsed / done * max(job.max_trials - done, 0)
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status.value,
        "is_final": job.status.is_final,
        "cancel_requested": job.cancel_requested,
        "ended_by": job.ended_by,
        "done": done,
        "max_trials": job.max_trials,
        "progress": 1.0 if job.status == JobStatus.SUCCEEDED else min(1.0, done / job.max_trials),
        "counts": counts,
        "best_score": job.best_score,
        "best_trial": job.best_trial_number,
        "objective": job.objective,
        "direction": job.direction.value,
        "algorithm": job.algorithm,
        "dataset": job.dataset,
        "created_at": as_utc(job.created_at),
        "started_at": started,
        "finished_at": finished,
        "elapsed_s": elapsed,
        "eta_s": eta,
        "error": job.error,
    }


def _leaderboard(rows: Sequence[TrialRow], params: Sequence[str], ranks: dict[int, int]) -> list:
    return [
        {
            "number": r.number,
            "status": r.status.value,
            "score": r.score,
            "epochs": r.epochs_run,
            "duration_s": None if r.duration_s is None else round(r.duration_s, 2),
            "params": {p: (r.hyperparameters or {}).get(p) for p in params},
            "model_rank": ranks.get(r.number),
            "reason": (r.failure_reason or "")[:300] or None,
            "health": [v["code"] for v in (r.health or {}).get("verdicts", [])],
            "confirms": r.confirms,
        }
        for r in rows
    ]


def best_numbers(rows: Sequence[TrialRow], maximize: bool, count: int) -> list[int]:
    """The ``count`` best completed trials' numbers."""
    done = figures.scored(rows)
    done.sort(key=lambda r: (-r.score if maximize else r.score, r.number))  # type: ignore[operator]
    return [r.number for r in done[:count]]


def build_job_payload(session: Session, job: Job, version: str | None) -> dict[str, Any]:
    """Everything the job page draws but the chosen trials' curves (fetched on their own):
    importance included when fresh or cheap to compute (``page_importance``)."""
    rows = dashboard.trial_rows(session, job.id)
    ranks = dashboard.model_ranks(session, job)
    maximize = job.direction == "max"
    params = figures.varying_params(rows)
    objective = job.objective
    return {
        "version": version,
        "state": job_state(job, rows),
        "params": params,
        "trials": _leaderboard(rows, params, ranks),
        "best": best_numbers(rows, maximize, DEFAULT_CURVES),
        "importance": page_importance(job, rows),
        "health": health_summary(rows),
        "study": _study(session, job),
        "figures": {
            "history": figures.history(rows, maximize, objective),
            "history_time": figures.history_by_time(
                rows, maximize, objective, as_utc(job.started_at)
            ),
            "parallel": figures.parallel(rows, params, maximize, objective),
            "timeline": figures.timeline(rows, utcnow()),
            "slices": [
                figures.slice_plot(rows, p, objective, len(rows)) for p in params[:MAX_SLICES]
            ],
        },
    }


def _study(session: Session, job: Job) -> dict[str, Any] | None:
    found = study_of(session, job)
    return None if found is None else study_view(found)


def health_summary(rows: Sequence[TrialRow]) -> dict[str, Any]:
    """The job's training health: verdict counts over its judged trials and the values that go
    with a verdict, as advice (``health.summary``)."""
    trials = [judged(r.hyperparameters or {}, r.health) for r in rows if r.health]
    return {
        "judged": len(trials),
        "counts": verdict_counts(trials),
        "advice": [a.advice() for a in associations(trials)[:MAX_HEALTH_ADVICE]],
    }


def _importance_view(found: Importances) -> dict[str, Any]:
    importances, computed_on = found
    figure = figures.importance(importances) if importances else None
    return {"importances": importances, "trials": computed_on, "figure": figure}


def _scored_params(rows: Sequence[TrialRow]) -> list[tuple[dict[str, Any], float]]:
    return [(r.hyperparameters or {}, r.score) for r in figures.scored(rows)]  # type: ignore[misc]


def page_importance(job: Job, rows: Sequence[TrialRow]) -> dict[str, Any] | None:
    """The importance pushed with the job page's data, so no viewer asks for it on its own:
    the last computed while fresh, else computed now from ``rows`` if the job has at most
    ``INLINE_IMPORTANCE_TRIALS`` completed trials. None: the page asks ``importance_payload``
    (a big ended job's first view is not held up by it)."""
    completed, exact = job.trials_completed, job.status.is_final
    found = fresh_importances(job.id, completed, exact)
    if found is None and completed <= INLINE_IMPORTANCE_TRIALS:
        found = cached_importances(
            job.id, completed, lambda: _scored_params(rows), job.direction == "max", exact
        )
    return None if found is None else _importance_view(found)


def importance_payload(settings: Settings, owner: str, job_id: str) -> dict[str, Any]:
    """The varying hyperparameters' importance as a figure, from the completed trials (read
    only when it is computed again: ``cached_importances``)."""
    job = transaction(settings, "read a job", lambda s: job_or_404(s, job_id, owner))

    def load() -> list[tuple[dict[str, Any], float]]:
        rows = transaction(
            settings, "read a job's trials", lambda s: dashboard.trial_rows(s, job_id)
        )
        return _scored_params(rows)

    found = cached_importances(
        job_id, job.trials_completed, load, job.direction == "max", exact=job.status.is_final
    )
    return _importance_view(found)


def curves_payload(
    settings: Settings, owner: str, job_id: str, numbers: Sequence[int], metric: str | None
) -> dict[str, Any]:
    """Learning curves of the chosen trials for ``metric`` (default: the objective's base);
    ``ended``: every one of them has ended (the curves are final)."""

    def read(session: Session) -> tuple[Job, dict[int, list[dashboard.EpochRow]], bool]:
        job = job_or_404(session, job_id, owner)
        ended = dashboard.trials_ended(session, job.id, numbers)
        return job, dashboard.trial_epochs(session, job.id, numbers), ended

    job, epochs, ended = transaction(settings, "read trials' epochs", read)
    every = [e for rows in epochs.values() for e in rows]
    bases = learning_curves.metric_bases(every)
    objective = job.objective.removeprefix("val_")
    chosen = metric if metric in bases else (objective if objective in bases else "loss")
    return {
        "metrics": bases,
        "metric": chosen,
        "trials": sorted(epochs),
        "ended": ended,
        "figure": learning_curves.curves(epochs, chosen),
    }


def model_rank(settings: Settings, owner: str, job_id: str, number: int) -> int | None:
    """The rank of trial ``number``'s stored model (1 = best), or None if it has none."""

    def read(session: Session) -> int | None:
        return dashboard.model_ranks(session, job_or_404(session, job_id, owner)).get(number)

    return transaction(settings, "find a trial's stored model", read)


def trial_payload(settings: Settings, owner: str, job_id: str, number: int) -> dict[str, Any]:
    """One trial: its row, its epochs as a table and curves, its stored model's rank."""

    def read(session: Session) -> dict[str, Any]:
        job = job_or_404(session, job_id, owner)
        rows = dashboard.trial_rows(session, job.id, number)
        if not rows:
            raise NotFoundError(f"trial {number} of job {quoted_id(job_id)} not found")
        epochs = dashboard.trial_epochs(session, job.id, [number], with_health=True)[number]
        stored = {
            a.trial_number: (rank, a)
            for rank, a in enumerate(artifacts.artifact_ranking(session, job), 1)
        }
        rank, artifact = stored.get(number, (None, None))
        return {
            "job": job_state(job, []),
            "trial": rows[0],
            "epochs": epochs,
            "model_rank": rank,
            "example_rows": _example_rows(artifact.signature if artifact else {}),
        }

    view = transaction(settings, "read a trial's dashboard", read)
    epochs = view["epochs"]
    means = learning_curves.epoch_means(epochs)
    columns = sorted(
        {n for m in means.values() for n in m}, key=lambda n: (n.startswith("val_"), n)
    )
    view["epoch_table"] = {"columns": columns, "rows": sorted(means.items())}
    view["figures"] = {
        base: learning_curves.curves({number: epochs}, base)
        for base in learning_curves.metric_bases(epochs)
    }
    if any("learning_rate" in m for m in means.values()):
        lr = learning_curves.curves({number: epochs}, "learning_rate")
        view["figures"]["learning_rate"] = lr
    stored = view["trial"].health or {}
    view["verdicts"] = stored.get("verdicts") or []
    view["baseline"] = stored.get("baseline")
    view["health_figures"] = {
        name: figure
        for name, figure in (
            ("gradient norms", health_figures.gradient_norms(epochs)),
            ("unit shares", health_figures.unit_shares(epochs)),
        )
        if figure is not None
    }
    view["all_figures"] = {**view["figures"], **view["health_figures"]}
    return view


def _example_rows(signature: dict[str, Any]) -> str:
    """A row of zeros of the model's input size, to show the predict form's shape."""
    size = 1
    for dimension in signature.get("input_shape") or []:
        size *= int(dimension)
    if not signature.get("input_shape") or size > 1000:
        return "[]"
    return json.dumps([[0] * size])


def jobs_payload(
    settings: Settings, owner: str, status: JobStatus | None, limit: int, offset: int
) -> dict[str, Any]:
    """A page of the owner's jobs, newest first, as rows of ``job_state``."""

    def read(session: Session) -> dict[str, Any]:
        rows, total = jobs.list_jobs(
            session, owner=owner, status=status, limit=limit, offset=offset
        )
        return {"jobs": [job_state(j, []) | _counters(j) for j in rows], "total": total}

    return transaction(settings, "list jobs for the dashboard", read)


def _counters(job: Job) -> dict[str, Any]:
    done = job.trials_done
    progress = 1.0 if job.status == JobStatus.SUCCEEDED else min(1.0, done / job.max_trials)
    return {"done": done, "progress": progress}


def compare_payload(settings: Settings, owner: str, job_ids: Sequence[str]) -> dict[str, Any]:
    """Two or more jobs' best-so-far histories overlaid, and their scores' distributions."""
    wanted = list(dict.fromkeys(job_ids))[:MAX_COMPARED]

    def read(session: Session) -> list[tuple[Job, list[TrialRow]]]:
        return [
            (job, dashboard.trial_rows(session, job.id))
            for job in (job_or_404(session, job_id, owner) for job_id in wanted)
        ]

    found = transaction(settings, "read jobs to compare", read)
    labelled = [(f"{(job.name or job.id[:8])} ({job.id[:6]})", job, rows) for job, rows in found]
    return {
        "jobs": [job_state(job, rows) for _, job, rows in labelled],
        "figures": {
            "history": figures.compare_histories(
                [(label, rows, job.direction == "max") for label, job, rows in labelled]
            ),
            "edf": figures.empirical_distribution([(label, rows) for label, _, rows in labelled]),
        },
    }


def job_detail(settings: Settings, owner: str, job_id: str) -> dict[str, Any]:
    """What the job page shows before its live data arrives: state, advice, spec, dataset."""

    def read(session: Session) -> dict[str, Any]:
        job = job_or_404(session, job_id, owner)
        state = job_state(job, []) | _counters(job)
        return {
            "state": state,
            "warnings": list(job.warnings or []),
            "spec": job.spec,
            "dataset_info": job.dataset_info,
            "upload_id": job.dataset.removeprefix(UPLOAD_PREFIX)
            if job.dataset.startswith(UPLOAD_PREFIX)
            else None,
        }

    return transaction(settings, "read a job for its page", read)


def dataset_payload(settings: Settings, owner: str, dataset_id: str) -> dict[str, Any]:
    """An uploaded dataset's summary, with its per-feature statistics and a balance or target
    histogram figure."""
    detail = datasets.get_dataset(settings, owner, dataset_id).model_dump(mode="json")
    summary = datasets.dataset_summary_with_stats(settings, owner, dataset_id) or {}
    balance = summary.get("class_balance")
    histogram = summary.get("target_histogram")
    figure = None
    if balance:
        figure = figures.bars(list(balance), list(balance.values()), "rows")
    elif histogram:
        edges = histogram["edges"]
        labels = [f"{edges[i]:.3g}" for i in range(len(edges) - 1)]
        figure = figures.bars(labels, histogram["counts"], "rows")
    return {"dataset": detail, "summary": summary, "figure": figure}
