"""TPE (Optuna's sampler over the job's stored trials) and the search's stop conditions
(``search.target``, ``search.patience_trials``)."""

from __future__ import annotations

from typing import Any

import optuna

from db.models import JobStatus, TrialStatus
from db.repositories.search import SearchRecord
from search_spaces.hyperparameters import hyperparameters_from_values
from tests.worker.helpers import create_job, drive, get_job, get_trials, tiny_spec
from worker.specs import parse_spec
from worker.training.tpe_search import TpeSearch


def test_a_tpe_search_runs_in_its_space_and_is_deterministic_under_its_seed(
    sqlite_url: str,
) -> None:
    spec = tiny_spec(algorithm="tpe", max_trials=5, seed=11, num_initial_points=2)
    spec["training"] = {"epochs": 1, "batch_size": 32}
    first, second = create_job(spec), create_job(spec)
    drive(first)
    drive(second)
    parsed = parse_spec(spec)
    runs = [[t.hyperparameters for t in get_trials(job)] for job in (first, second)]
    assert runs[0] == runs[1] and len(runs[0]) == 5
    for values in runs[0]:
        # a valid point of the space: every active hyperparameter set, nothing else
        assert hyperparameters_from_values(parsed, values).values == values
    job = get_job(first)
    assert job.status is JobStatus.SUCCEEDED and job.trials_completed == 5
    assert all(t.proposal_s is not None for t in get_trials(first))


def _records(points: list[tuple[float, float | None]]) -> dict[int, SearchRecord]:
    """Trial rows: a value of ``x`` and a score (None: still running)."""
    return {
        n: SearchRecord(
            {"x": x},
            TrialStatus.COMPLETED if score is not None else TrialStatus.RUNNING,
            score,
            0,
            None,
        )
        for n, (x, score) in enumerate(points)
    }


def _x_spec(**search: Any) -> Any:
    return parse_spec(
        {
            "dataset": {"name": "diabetes"},
            "model": {"dropout": {"type": "float", "min": 0.0, "max": 0.9}},
            "search": {"algorithm": "tpe", "max_trials": 40, "seed": 5, **search},
        }
    )


def test_tpe_learns_where_the_scores_are_and_steers_pending_trials_apart() -> None:
    spec = _x_spec(num_initial_points=8)
    points: list[tuple[float, float | None]] = []
    search = TpeSearch(spec, None, lambda numbers: _remap(_records(points)))
    for _ in range(30):
        proposal = search.propose()
        x = proposal.values["dropout"]
        points.append((x, (x - 0.7) ** 2))  # val_loss is minimised: lowest at 0.7
    late = [x for x, _ in points[15:]]
    # the model's proposals gather where the objective is best (val_loss: lowest at 0.7)...
    assert sum(abs(x - 0.7) for x in late) / len(late) < 0.15
    # ...and the trials in flight reach the sampler as running, which its constant liar
    # counts as bad results, so parallel workers are not sent the same point
    pending = [*points[:20], (0.7, None), (0.69, None)]
    study = TpeSearch(spec, {"proposed": 22}, lambda _: _remap(_records(pending)))._study(22)
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert [t.params["dropout"] for t in running] == [0.7, 0.69]
    assert study.sampler._constant_liar


def test_the_random_start_is_drawn_whatever_the_trials_scored() -> None:
    # Each proposal of the random start has its own seeded stream, so a benchmark (or a user)
    # can know a job's first points without running it (bench.optuna_arm's shared start).
    spec = _x_spec(num_initial_points=5)
    points: list[tuple[float, float | None]] = []
    search = TpeSearch(spec, None, lambda numbers: _remap(_records(points)))
    for _ in range(7):
        x = search.propose().values["dropout"]
        points.append((x, (x - 0.7) ** 2))
    alone = [TpeSearch(spec, {"proposed": n}, lambda _: {}).propose() for n in range(7)]
    assert [p.values["dropout"] for p in alone[:5]] == [x for x, _ in points[:5]]
    assert len({p.values["dropout"] for p in alone[:5]}) == 5  # a stream per proposal
    # after it, TPE learns from the scores: an empty history gives other points
    assert [p.values["dropout"] for p in alone[5:]] != [x for x, _ in points[5:]]


def _remap(records: dict[int, SearchRecord]) -> dict[int, SearchRecord]:
    # the space's name for the searched dropout rate
    return {
        n: SearchRecord({"dropout": r.values["x"]}, r.status, r.score, r.best_epoch, None)
        for n, r in records.items()
    }


def test_a_search_stops_at_its_target(sqlite_url: str) -> None:
    spec = tiny_spec(max_trials=6, target=0.0)  # any accuracy reaches it
    job_id = create_job(spec)
    drive(job_id)
    job, trials = get_job(job_id), get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.ended_by == "target"
    completed = [t for t in trials if t.status is TrialStatus.COMPLETED]
    assert 1 <= len(completed) < 6
    # the trials waiting when it stopped never ran
    for trial in trials:
        if trial.status is TrialStatus.CANCELLED:
            assert trial.epochs_run == 0 and "target" in trial.failure_reason


def test_a_search_stops_after_patience_trials_without_improvement(sqlite_url: str) -> None:
    spec = tiny_spec(max_trials=12, patience_trials=2)
    spec["optimizer"] = {"learning_rate": {"type": "choice", "values": [0.03, 1e-6]}}
    job_id = create_job(spec)
    drive(job_id)
    job, trials = get_job(job_id), get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.ended_by == "patience_trials"
    ended = sorted(
        (t for t in trials if t.status.informs_search), key=lambda t: (t.finished_at, t.number)
    )
    best = next(i for i, t in enumerate(ended) if t.number == job.best_trial_number)
    assert len(ended) - 1 - best >= 2  # two ended after the best, none improved on it
    assert len(ended) < 12


def test_a_search_that_runs_its_trials_says_so(sqlite_url: str) -> None:
    job_id = create_job(tiny_spec(max_trials=2))
    drive(job_id)
    assert get_job(job_id).ended_by == "max_trials"


def test_tpe_samples_a_reverse_log_range_crowded_at_its_top_as_keras_tuner_does() -> None:
    spec = parse_spec(
        {
            "dataset": {"name": "diabetes"},
            "optimizer": {
                "name": "adam",
                "beta_1": {"type": "float", "min": 0.01, "max": 0.999, "sampling": "reverse_log"},
            },
            "search": {"algorithm": "tpe", "max_trials": 40, "seed": 2, "num_initial_points": 30},
        }
    )
    rows: dict[int, SearchRecord] = {}
    search = TpeSearch(spec, None, lambda _: rows)
    drawn = []
    for number in range(30):
        value = search.propose().values["beta_1"]
        drawn.append(value)
        rows[number] = SearchRecord({"beta_1": value}, TrialStatus.COMPLETED, value, 0, None)
    assert all(0.01 <= v <= 0.999 for v in drawn)
    # min + max - (log-uniform): half the draws above ~0.91, where a linear range has 0.5
    assert sorted(drawn)[15] > 0.8
