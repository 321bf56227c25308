"""The datasets of the search-quality benchmark: what a spec names for each, its objective and
target, and how its data reaches the service and Optuna's processes.

- ``digits``: scikit-learn's (1,797 rows), built in;
- ``pima``: Pima diabetes' ``diabetes.csv`` (768 rows), uploaded through the API (target
  ``Outcome``);
- ``fashion``: a 10,000-row subset of Fashion-MNIST (Keras's loader, fed from the checked files
  copied into ``$KERAS_HOME``), flattened and standardized;
- ``housing``: California housing (20,640 rows, ``cal_housing.data`` with a header, the price
  in $100,000), uploaded, standardized; a regression scored by validation MSE (lower is better).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.client import ApiClient
from bench.fashion_table import seed_keras_cache
from bench.technique_studies import housing_csv
from search_spaces.direction import Direction

#: every search: at most this many epochs a trial, batches of this size, early stopping with
#: this patience
EPOCHS = 10
BATCH_SIZE = 32
PATIENCE = 3


@dataclass(frozen=True)
class QualityDataset:
    """One dataset of the benchmark."""

    name: str
    objective: str
    #: chosen before the full run from smoke runs: a level most searches reach, not at once
    target: float
    #: extra ``dataset`` fields of the spec (besides name, split)
    dataset_fields: dict[str, Any] = field(default_factory=dict)
    #: the spec's ``model.input``
    model_input: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> Direction:
        """Which way the objective improves (as the service reads it)."""
        return Direction.of_objective(self.objective)

    def best(self, scores: list[float]) -> float | None:
        """The best of ``scores`` (None if there are none)."""
        return self.direction.best(scores, key=float) if scores else None


DATASETS = {
    d.name: d
    for d in (
        QualityDataset("digits", "val_accuracy", 0.975),
        QualityDataset("pima", "val_accuracy", 0.82),
        QualityDataset(
            "fashion",
            "val_accuracy",
            0.86,
            dataset_fields={"max_rows": 10000},
            model_input={"flatten": True, "standardize": True},
        ),
        QualityDataset("housing", "val_loss", 0.30, model_input={"standardize": True}),
    )
}


def prepare_data(names: list[str], data_root: Path, work: Path) -> None:
    """Fashion-MNIST's files where Keras's loader finds them (``KERAS_HOME``, inherited by the
    service's and Optuna's processes)."""
    if "fashion" in names:
        seed_keras_cache(data_root / "fashion_mnist", work / "keras")
        os.environ["KERAS_HOME"] = str(work / "keras")


def dataset_ref(name: str, client: ApiClient, data_root: Path, work: Path) -> str:
    """What a spec's ``dataset.name`` is for ``name``: built in, or uploaded now."""
    if name == "pima":
        upload = data_root / "pima_diabetes" / "diabetes.csv"
        return str(client.upload_dataset(upload, target="Outcome", name="pima-diabetes")["ref"])
    if name == "housing":
        upload = housing_csv(data_root / "california_housing", work / "housing.csv")
        return str(
            client.upload_dataset(upload, target="median_house_value", name="housing")["ref"]
        )
    return {"fashion": "fashion_mnist"}.get(name, name)
