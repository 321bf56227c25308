"""A search restored at every step from its small state and its trial rows proposes exactly what
it proposed when its state held every trial, for every algorithm, and what the same oracle kept
in memory proposes (except Bayesian optimisation, whose Gaussian process is refitted after a
restore either way); a step reads only the rows it needs."""

from __future__ import annotations

from typing import Any

import pytest

from db.models import TrialStatus
from db.repositories.search import SearchRecord
from search_spaces.schema import JobSpec
from tests.worker.helpers import tiny_spec
from worker.training.oracle import Search, build_oracle


def _score(values: dict[str, Any]) -> float:
    """A made-up, deterministic objective of a trial's values."""
    return round(0.5 + 0.01 * values.get("units", 0) - 0.1 * values.get("depth", 0), 6)


def _in_memory(spec: JobSpec, concurrent: int, steps: int) -> list[dict[str, Any]]:
    oracle = build_oracle(spec)
    proposed, running = [], []
    for _ in range(steps):
        while len(running) < concurrent:
            trial = oracle.create_trial(f"trial-{len(oracle.trials)}")
            if trial.status != "RUNNING":
                break
            proposed.append(dict(trial.hyperparameters.values))
            running.append(trial)
        if not running:
            break
        trial = running.pop(0)
        oracle.update_trial(
            trial.trial_id, {spec.objective: _score(trial.hyperparameters.values)}, step=1
        )
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return proposed


def _restored_each_step(
    spec: JobSpec,
    concurrent: int,
    steps: int,
    reads: list[list[int] | None],
    trials_in_state: bool = False,
) -> list[dict[str, Any]]:
    rows: dict[int, SearchRecord] = {}
    state: dict[str, Any] | None = None
    running: list[int] = []

    def load(numbers: list[int] | None) -> dict[int, SearchRecord]:
        reads.append(numbers)
        return {n: r for n, r in rows.items() if numbers is None or n in numbers}

    def step(report: int | None) -> bool:
        nonlocal state
        search = Search(spec, state, 0 if trials_in_state else len(rows), load)
        if report is not None:
            search.report(report, rows[report].score, 1, None)
        added = False
        while len(running) < concurrent:
            proposal = search.propose()
            if proposal.number is None:
                break
            values = proposal.values or {}
            rows[proposal.number] = SearchRecord(values, TrialStatus.WAITING, None, None, None)
            running.append(proposal.number)
            added = True
        state = search.state()
        if trials_in_state:  # the layout before trials were read from their rows
            state["trials"] = {k: t.get_state() for k, t in search.oracle.trials.items()}
        return added or report is not None

    step(None)
    for _ in range(steps):
        if not running:
            break
        number = running.pop(0)
        values = rows[number].values
        rows[number] = SearchRecord(values, TrialStatus.COMPLETED, _score(values), 1, None)
        step(number)
    return [rows[n].values for n in sorted(rows)]


@pytest.mark.parametrize(
    ("algorithm", "extra"),
    [
        ("random", {"max_trials": 12}),
        ("bayesian", {"max_trials": 8, "num_initial_points": 3}),
        ("hyperband", {"hyperband_factor": 3}),
        ("grid", {"max_trials": 10}),
    ],
)
def test_a_restored_search_proposes_what_one_kept_in_memory_proposes(
    algorithm: str, extra: dict[str, Any]
) -> None:
    raw = tiny_spec(algorithm=algorithm, **extra)
    raw["training"]["epochs"] = 4
    spec = JobSpec.model_validate(raw)
    reads: list[list[int] | None] = []
    restored = _restored_each_step(spec, concurrent=2, steps=40, reads=reads)
    assert restored == _restored_each_step(spec, 2, 40, [], trials_in_state=True)
    if algorithm != "bayesian":
        assert restored == _in_memory(spec, concurrent=2, steps=40)
    assert len(restored) >= 6
    if algorithm == "random":  # a step reads the trials it touches, never all of them
        assert None not in reads and max(len(r or []) for r in reads) <= 2


def test_a_state_saved_with_its_trials_inside_still_restores() -> None:
    spec = JobSpec.model_validate(tiny_spec(max_trials=5))
    oracle = build_oracle(spec)
    first = oracle.create_trial("trial-0")
    old_state = oracle.get_db_state()
    old_state["trials"] = {first.trial_id: first.get_state()}  # the layout before 0005
    search = Search(spec, old_state, 0, lambda numbers: {})
    search.report(int(first.trial_id), 0.7, 1, None)
    assert search.propose().number == 1
    assert "trials" not in search.state()


def test_a_pruned_trial_informs_random_and_bayesian_search_but_hyperband_never_promotes_it() -> (
    None
):
    from worker.training.stored_trials import to_kt_trial

    pruned = SearchRecord({"units": 8}, TrialStatus.PRUNED, 0.35, 4, "hopeless: ...")
    for algorithm, status in (("random", "COMPLETED"), ("bayesian", "COMPLETED"),
                              ("hyperband", "FAILED")):  # fmt: skip
        oracle = build_oracle(JobSpec.model_validate(tiny_spec(algorithm=algorithm)))
        trial = to_kt_trial(oracle, "00", pruned)
        assert trial.status == status, algorithm
        assert (trial.score == 0.35) is (status == "COMPLETED")
    unscored = SearchRecord({"units": 8}, TrialStatus.PRUNED, None, None, "hopeless: ...")
    random_oracle = build_oracle(JobSpec.model_validate(tiny_spec()))
    assert to_kt_trial(random_oracle, "00", unscored).status == "FAILED"
