"""A technique study's trials, in place of a search algorithm: trial ``n`` trains variant
``n % V`` with seed ``n // V`` (``search_spaces.study_spec``); nothing is learned from results."""

from __future__ import annotations

from typing import Any

from search_spaces.schema import JobSpec
from worker.training.oracle import Proposal


class StudySearch:
    """Proposes the study's trials in order, as many as ``max_trials``; its state is how many
    it proposed (every proposal is a trial row, created in the same transaction)."""

    def __init__(self, spec: JobSpec, state: dict[str, Any] | None) -> None:
        assert spec.study is not None
        self.study = spec.study
        self.proposed = int((state or {}).get("proposed", 0))

    def propose(self) -> Proposal:
        """The next (variant, seed) trial, or done once all were proposed."""
        if self.proposed >= self.study.trials:
            return Proposal(done=True)
        variant, seed = self.study.trial(self.proposed)
        self.proposed += 1
        return Proposal(self.proposed - 1, {"variant": variant, "seed": seed})

    def report(
        self,
        number: int,
        score: float | None,
        step: int,
        failure: str | None,
        pruned: bool = False,
    ) -> None:
        """A trial ended: a study plans nothing from it."""

    def state(self) -> dict[str, Any]:
        return {"proposed": self.proposed}
