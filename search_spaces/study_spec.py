"""A technique study: one base configuration, named variants of it (each a patch: ``{"model":
{"kernel_initializer": "he_normal"}}``), each trained with the same seeds on the same split. Its
result is each variant's mean and interval over the seeds and its difference to the baseline
variant (``studies/``), not a search: every variant must be one configuration.

Trial ``n`` of a study trains variant ``n % V`` with seed ``n // V`` (V variants): seed by seed,
so a study stopped early still has every variant at the same seeds.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, model_validator

from search_spaces import limits
from search_spaces.errors import SpecError
from search_spaces.params import StrictModel, is_fixed

if TYPE_CHECKING:
    from search_spaces.schema import JobSpec

#: the sections a variant may change: what is trained and how, never the data or the search.
PATCHABLE = ("model", "optimizer", "schedule", "training")
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+()=,-]{0,63}$")
#: the seeds' training seeds: seed ``i`` trains with ``SEED_BASE + i`` (weights and row order).
SEED_BASE = 0


class StudySpec(StrictModel):
    """The variants of a technique study, and how many seeds each is trained with."""

    variants: dict[str, dict[str, Any]] = Field(
        min_length=2,
        max_length=limits.MAX_STUDY_VARIANTS,
        description="Variant name -> a patch of the base spec (its model, optimizer, schedule "
        "or training); {} is the base itself. Each must be one configuration.",
    )
    baseline: str | None = Field(
        default=None, description="The variant the others are compared with. Default: the first."
    )
    seeds: int = Field(
        default=3,
        ge=2,
        le=limits.MAX_STUDY_SEEDS,
        description="Trainings of each variant, with seeds 0, 1, ... (weights and row order); "
        "the split is the same for all.",
    )
    confidence: float = Field(
        default=0.95, ge=0.5, le=0.999, description="Of the intervals and the tests."
    )

    @model_validator(mode="after")
    def _named(self) -> StudySpec:
        for name, patch in self.variants.items():
            if not VARIANT_NAME.match(name):
                raise SpecError(
                    "study.variants",
                    f"variant name {name!r}: 1-64 letters, digits, spaces or _.+()=,- "
                    "starting with a letter or digit",
                )
            for section, value in patch.items():
                if not isinstance(value, dict):
                    raise SpecError(
                        f"study.variants.{name}.{section}",
                        "a patch of a section is an object (the fields it changes)",
                    )
            extra = sorted(set(patch) - set(PATCHABLE))
            if extra:
                raise SpecError(
                    f"study.variants.{name}",
                    f"a variant patches only {', '.join(PATCHABLE)}; not {', '.join(extra)} "
                    "(every variant trains on the same data)",
                )
        if self.baseline is not None and self.baseline not in self.variants:
            raise SpecError("study.baseline", f"{self.baseline!r} is not one of the variants")
        return self

    @property
    def baseline_name(self) -> str:
        return self.baseline or next(iter(self.variants))

    @property
    def trials(self) -> int:
        return len(self.variants) * self.seeds

    def trial(self, number: int) -> tuple[str, int]:
        """Trial ``number``'s variant and seed index."""
        names = list(self.variants)
        return names[number % len(names)], number // len(names)


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``patch``, recursing into nested sections; a value, a list or a
    parameter (``{"type": "choice", ...}``, as a stored spec holds even a fixed value)
    replaces what it patches."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        section = isinstance(value, dict) and "type" not in value
        if section and isinstance(merged.get(key), dict) and "type" not in merged[key]:
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def variant_json(spec_json: dict[str, Any], name: str, seed: int | None = None) -> dict[str, Any]:
    """The spec (as JSON) of variant ``name`` of the study ``spec_json``, one trial of it, with
    seed ``SEED_BASE + seed`` (weights and batch order) when given."""
    study = spec_json["study"]
    base = {k: v for k, v in spec_json.items() if k != "study"}
    patch = study["variants"][name]
    model = dict(base.get("model") or {})
    # the layers and depth/units are alternatives: a variant giving one drops the other
    patched = set(patch.get("model") or {})
    if "layers" in patched:
        model.pop("depth", None)
        model.pop("units", None)
    elif patched & {"depth", "units"}:
        model.pop("layers", None)
    merged = deep_merge({**base, "model": model}, patch)
    merged["search"] = {**merged.get("search", {}), "max_trials": 1, "algorithm": "random"}
    if seed is not None:  # the layers' initializers follow search.seed, the batches training.seed
        merged["search"]["seed"] = SEED_BASE + seed
        merged["training"] = {**merged.get("training", {}), "seed": SEED_BASE + seed}
    return merged


def with_study_budget(data: Any) -> Any:
    """A submitted spec (before validation) whose study sets ``search.max_trials`` to its
    variants x seeds when the spec does not say (a spec that says otherwise is refused)."""
    study = data.get("study") if isinstance(data, dict) else None
    if not isinstance(study, dict) or not isinstance(study.get("variants"), dict):
        return data
    seeds = study.get("seeds", StudySpec.model_fields["seeds"].default)
    search = data.get("search") or {}
    if not isinstance(seeds, int) or not isinstance(search, dict) or "max_trials" in search:
        return data
    return {**data, "search": {**search, "max_trials": len(study["variants"]) * seeds}}


def check_study(spec: JobSpec) -> None:
    """Each variant is a valid spec of one configuration; the study's trials are its budget
    (``search.max_trials`` is set to them)."""
    from search_spaces.schema import JobSpec

    study = spec.study
    if study is None:
        return
    if spec.search.algorithm != "random":
        raise SpecError(
            "search.algorithm",
            "a study trains each variant with each seed; it has no search algorithm (leave "
            "algorithm out)",
        )
    if spec.search.max_trials != study.trials:
        raise SpecError(
            "search.max_trials",
            f"a study runs {len(study.variants)} variants x {study.seeds} seeds = {study.trials} "
            "trials; leave max_trials out",
        )
    base = spec.model_dump(mode="json")
    # the variants train on the job's data: resolved once, for the base
    context = {"datasets": {spec.dataset.name: spec.dataset.info}}
    for name in study.variants:
        where = f"study.variants.{name}"
        try:
            variant = JobSpec.model_validate(variant_json(base, name), context=context)
        except ValidationError as error:
            first = error.errors()[0]
            ctx = first.get("ctx") or {}
            field = ctx.get("field") or ".".join(map(str, first["loc"]))
            limit = next((ctx[k] for k in ("limit", "le", "max_length") if k in ctx), None)
            raise SpecError(f"{where}.{field}", ctx.get("message") or first["msg"], limit) from None
        searched = [path for path, param in variant.iter_params() if not is_fixed(param)]
        if searched:
            raise SpecError(
                where,
                "each variant is one configuration; fix these searched parameters: "
                + ", ".join(searched),
            )
