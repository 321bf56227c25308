"""The spec's ``dataset`` section: which data to train on, and how to split it."""

from __future__ import annotations

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from search_spaces import limits
from search_spaces.datasets import BUILTIN_DATASETS, UPLOAD_PREFIX, DatasetInfo
from search_spaces.errors import SpecError
from search_spaces.params import StrictModel
from search_spaces.vocabulary import Seed, SplitMethod

#: a built-in's name or an upload's (its id is 32 hex digits).
DATASET_NAME_PATTERN = f"^({'|'.join(sorted(BUILTIN_DATASETS))}|{UPLOAD_PREFIX}[0-9a-f]{{32}})$"


class DatasetSpec(StrictModel):
    """Which data to train on and how to split it.

    ``name`` is a built-in dataset or ``upload:<id>`` of an uploaded one. Uploads live in the
    database, so this pure layer cannot look them up: whoever validates a spec naming one passes
    a resolver in the validation context, ``JobSpec.model_validate(data, context={"datasets":
    resolve})`` where ``resolve(name)`` returns its ``DatasetInfo`` or ``None`` (a mapping works
    too). Without one, an upload name is refused.
    """

    name: str = Field(
        max_length=100,
        description="A built-in dataset, or upload:<id> of an uploaded one "
        "(GET /api/v1/datasets lists both).",
        # documents the names; the validator below says which one is unknown
        json_schema_extra={"pattern": DATASET_NAME_PATTERN},
    )
    validation_split: float = Field(default=0.2, ge=0.05, le=0.5)
    split: SplitMethod = Field(
        default="stratified",
        description="'stratified': a seeded sample, stratified by class; 'last': the last rows "
        "in the dataset's order, as Keras's fit(validation_split=...) takes them "
        "(max_rows then keeps the first rows).",
    )
    split_seed: Seed = 0
    max_rows: int | None = Field(
        default=None,
        ge=10,
        le=limits.MAX_ROWS,
        description="Use a seeded sample of this many rows.",
    )
    _info: DatasetInfo | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _known(self, validation: ValidationInfo) -> DatasetSpec:
        if self.name in BUILTIN_DATASETS:
            self._info = BUILTIN_DATASETS[self.name]
            return self
        if not self.name.startswith(UPLOAD_PREFIX):
            known = ", ".join(sorted(BUILTIN_DATASETS))
            raise SpecError(
                "dataset.name",
                f"unknown dataset {self.name!r}; known: {known}, or {UPLOAD_PREFIX}<id> of an "
                "uploaded dataset",
            )
        datasets = (validation.context or {}).get("datasets")
        if datasets is None:
            raise SpecError(
                "dataset.name",
                f"{self.name!r} names an uploaded dataset; only the service can resolve it",
            )
        found = datasets(self.name) if callable(datasets) else datasets.get(self.name)
        if found is None:
            raise SpecError("dataset.name", f"no uploaded dataset {self.name!r}")
        self._info = found
        return self

    @property
    def info(self) -> DatasetInfo:
        assert self._info is not None  # set by the validator, always
        return self._info

    @property
    def training_rows(self) -> int:
        rows = min(self.info.rows, self.max_rows or self.info.rows)
        return rows - max(1, round(rows * self.validation_split))
