"""The job spec: a search space over dense Keras networks, and how to search it.

Every technique of the catalogue can be fixed (a bare value) or searched (``choice``, ``int`` or
``float`` ranges, see ``params.py``). Unknown fields are rejected. Hard limits live in
``limits.py``; a spec that breaks one fails validation with the field and the limit named. The
words a spec uses are in ``vocabulary.py``; its ``dataset`` section in ``dataset_spec.py``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from search_spaces import limits
from search_spaces.dataset_spec import DatasetSpec
from search_spaces.datasets import (
    Task,
    default_objective,
    infer_direction,
    objective_names,
)
from search_spaces.direction import Direction
from search_spaces.errors import SpecError
from search_spaces.layer_spec import CHILDREN, LAYER_PARAMETERS, LayerEntry, LayerSpec, as_layer
from search_spaces.params import (
    AnyParam,
    CatParam,
    Fixed,
    FloatParam,
    IntParam,
    StrictModel,
    fixed_value,
    is_finite,
    is_fixed,
    upper_bound,
)
from search_spaces.search_stops import check_search_stops
from search_spaces.space_size import default_initial_points, grid_points, searched_dimensions
from search_spaces.study_spec import StudySpec, check_study, with_study_budget
from search_spaces.training_spec import ScheduleSpec, SearchSettings, TrainingSpec
from search_spaces.vocabulary import (
    Activation,
    BatchNormPlacement,
    Beta,
    Clipping,
    Depth,
    DropoutKind,
    FanMode,
    Initializer,
    LearningRate,
    NonNegative,
    OptimizerName,
    PenaltyFactor,
    PerLayer,
    Positive,
    Rate,
    Regularizer,
    ScaleDistribution,
    UnitInterval,
    Units,
    VarianceScale,
)

__all__ = ["DatasetSpec", "JobSpec"]


class InputSpec(StrictModel):
    """Preprocessing layers in front of the hidden stack."""

    flatten: bool | None = Field(
        default=None, description="Flatten inputs; default: when rank > 1."
    )
    rescale: float | None = Field(
        default=None,
        gt=0.0,
        le=1e6,
        description="Multiply inputs by this factor first (a Rescaling layer), e.g. 1/255 for pixels.",
    )
    standardize: CatParam(bool) = Field(
        default=True, description="A Normalization layer adapted on the training split only."
    )
    batch_norm: CatParam(bool) = Field(
        default=False, description="BatchNormalization on the input."
    )


class VarianceScalingSpec(StrictModel):
    """Arguments of the ``variance_scaling`` initializer."""

    scale: FloatParam(VarianceScale) = 1.0
    mode: CatParam(FanMode) = "fan_in"
    distribution: CatParam(ScaleDistribution) = "truncated_normal"


class ModelSpec(StrictModel):
    """A dense network: depth and width, activation, init, batch norm, dropout, penalties."""

    input: InputSpec = Field(default_factory=InputSpec)
    layers: list[LayerEntry] | None = Field(
        default=None,
        min_length=1,
        max_length=limits.MAX_LAYERS,
        description="Explicit hidden layers, e.g. [300, 100, 50]: each its units, or an object "
        "that also fixes its activation, kernel_initializer, batch_norm or dropout, e.g. "
        '{"units": 100, "activation": "selu", "dropout": 0.1}. Fixes depth and width.',
    )
    depth: IntParam(Depth) = Field(default=2, description="Number of hidden layers.")
    units: IntParam(Units) = Field(default=64, description="Units per hidden layer.")
    per_layer: list[PerLayer] = Field(
        default_factory=list,
        description="Parameters sampled independently for each hidden layer (units_0, units_1...).",
    )
    activation: CatParam(Activation) = "relu"
    leaky_alpha: FloatParam(UnitInterval) = Field(
        default=0.2, description="Negative slope (leaky_relu)."
    )
    rrelu_lower: FloatParam(UnitInterval) = Field(
        default=1 / 8, description="RReLU slope range low."
    )
    rrelu_upper: FloatParam(UnitInterval) = Field(
        default=1 / 3, description="RReLU slope range high."
    )
    kernel_initializer: CatParam(Initializer) = Field(
        default="glorot_uniform",
        description="'auto' pairs He with ReLU-like, LeCun with SELU, Glorot else.",
    )
    variance_scaling: VarianceScalingSpec = Field(default_factory=VarianceScalingSpec)
    batch_norm: CatParam(BatchNormPlacement) = Field(
        default="none",
        description="BatchNormalization before or after each hidden activation, or "
        "'before_dense': on each hidden Dense layer's input.",
    )
    dropout: FloatParam(Rate) = Field(
        default=0.0, description="Dropout rate after each hidden layer."
    )
    dropout_kind: CatParam(DropoutKind) = "dropout"
    regularizer: CatParam(Regularizer) = "none"
    regularization_factor: FloatParam(PenaltyFactor) = 1e-4
    max_norm: FloatParam(NonNegative) = Field(
        default=0.0, description="MaxNorm constraint r; 0 = none."
    )

    @model_validator(mode="after")
    def _coherent(self) -> ModelSpec:
        if self.layers is not None:
            explicit = self.model_fields_set & {"depth", "units"}
            if explicit:
                raise SpecError(
                    "model.layers", f"give either layers or {'/'.join(sorted(explicit))}, not both"
                )
            if "units" in self.per_layer:
                raise SpecError(
                    "model.per_layer", "'units' needs depth/units, not an explicit layers list"
                )
        if len(set(self.per_layer)) != len(self.per_layer):
            raise SpecError("model.per_layer", "entries must be unique")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_shape(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # With explicit layers, depth/units are unused defaults; leaving them out keeps a dumped
        # spec valid (the workers re-validate the spec the API stored).
        data = handler(self)
        if self.layers is not None:
            data.pop("depth", None)
            data.pop("units", None)
        return data

    def layer(self, index: int) -> LayerSpec | None:
        """Hidden layer ``index`` as the spec fixes it (None without explicit layers)."""
        return None if self.layers is None else as_layer(self.layers[index])

    def is_per_layer(self, name: str) -> bool:
        """Whether hyperparameter ``name`` (a model field) takes a value per hidden layer: listed
        in ``per_layer``, fixed by some layer, or a child of such a parameter."""
        parent = next((p for p, kids in CHILDREN.items() if name in kids), name)
        if parent in self.per_layer:
            return True
        layers = [as_layer(entry) for entry in self.layers or []]
        return parent in LAYER_PARAMETERS and any(layer.fixes(parent) for layer in layers)

    def layer_param(self, name: str, index: int, shared: AnyParam) -> AnyParam:
        """The parameter of layer ``index`` for ``name``: the value the layer fixes, else the
        model's ``shared`` one (``name`` may be a child, e.g. ``leaky_alpha``, or
        ``variance_scaling.scale``)."""
        layer = self.layer(index)
        if layer is None:
            return shared
        head, _, tail = name.partition(".")
        fixed = getattr(layer, head)
        if fixed is not None and tail:
            fixed = getattr(fixed, tail)
        return shared if fixed is None else Fixed[Any](value=fixed)

    @property
    def max_depth(self) -> int:
        return len(self.layers) if self.layers is not None else upper_bound(self.depth)

    def max_parameter_count(self, n_features: int, n_outputs: int) -> int:
        """Trainable weights of the largest network the space allows (resource bound)."""
        if self.layers is not None:
            widths = [as_layer(entry).units for entry in self.layers]
        else:
            widths = [upper_bound(self.units)] * upper_bound(self.depth)
        sizes = [n_features, *widths, n_outputs]
        return sum((a + 1) * b for a, b in pairwise(sizes))


class OptimizerSpec(StrictModel):
    """Optimizer, learning rate, optimizer-specific arguments and gradient clipping.

    ``momentum`` applies to sgd-with-momentum and nesterov; ``rho`` to rmsprop and adadelta;
    ``beta_1``/``beta_2`` to adam, adamw, nadam and adamax; ``weight_decay`` to adamw.
    """

    name: CatParam(OptimizerName) = "adam"
    learning_rate: FloatParam(LearningRate) = 1e-3
    momentum: FloatParam(Beta) = 0.9
    rho: FloatParam(Beta) = 0.9
    beta_1: FloatParam(Beta) = 0.9
    beta_2: FloatParam(Beta) = 0.999
    weight_decay: FloatParam(PenaltyFactor) = 0.004
    clipping: CatParam(Clipping) = "none"
    clip_threshold: FloatParam(Positive) = 1.0


class JobSpec(StrictModel):
    """A whole job: data, search space (model, optimizer, schedule, training) and search settings."""

    name: str | None = Field(
        default=None,
        max_length=limits.MAX_NAME_LENGTH,
        pattern=limits.NAME_PATTERN,
        description=f"A label: {limits.NAME_RULE}.",
    )
    dataset: DatasetSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    search: SearchSettings = Field(default_factory=SearchSettings)
    study: StudySpec | None = Field(
        default=None,
        description="A technique study instead of a search: named variants of this spec, each "
        "trained with the same seeds (search.max_trials is set to variants x seeds).",
    )

    @property
    def trial_budget(self) -> int:
        """The trials the job may run: ``max_trials`` (1 for a single configuration), plus
        its confirmation runs."""
        confirm = self.search.confirm
        searched = 1 if self.is_single_configuration else self.search.max_trials
        if self.study is not None:
            searched = self.study.trials
        return searched + (min(confirm.top_k, searched) * confirm.seeds if confirm else 0)

    @property
    def task(self) -> Task:
        return self.dataset.info.task

    @property
    def objective(self) -> str:
        return self.search.objective or default_objective(self.task)

    @property
    def direction(self) -> Direction:
        """Which way the objective improves (the search's own, else the objective's)."""
        if self.search.direction is not None:
            return Direction(self.search.direction)
        return infer_direction(self.objective)

    @property
    def early_stopping_monitor(self) -> str:
        return self.training.early_stopping.monitor or self.objective

    @model_validator(mode="before")
    @classmethod
    def _study_budget(cls, data: Any) -> Any:
        return with_study_budget(data)

    @model_validator(mode="after")
    def _coherent(self) -> JobSpec:
        allowed = objective_names(self.task)
        if self.objective not in allowed:
            raise SpecError(
                "search.objective",
                f"{self.objective!r} is not logged for a {self.task} task; use one of {allowed}",
            )
        if self.early_stopping_monitor not in allowed:
            raise SpecError(
                "training.early_stopping.monitor",
                f"{self.early_stopping_monitor!r} is not logged for a {self.task} task; use one of {allowed}",
            )
        loss = self.training.loss
        if self.task != "regression" and not (is_fixed(loss) and fixed_value(loss) == "mse"):
            raise SpecError(
                "training.loss",
                f"loss is chosen for regression tasks only; a {self.task} task trains with "
                "cross-entropy (leave loss out)",
            )
        info = self.dataset.info
        if self.model.input.flatten is False and len(info.input_shape) > 1:
            raise SpecError(
                "model.input.flatten",
                f"{self.dataset.name} rows have shape {info.input_shape}; a dense network needs "
                "them flattened (omit flatten or set it to true)",
            )
        worst = self.model.max_parameter_count(info.n_features, info.n_outputs)
        if worst > limits.MAX_PARAMETERS:
            raise SpecError(
                "model",
                f"the largest model this space allows has {worst:,} parameters, over the limit of "
                f"{limits.MAX_PARAMETERS:,} (max_parameters): lower depth, units or layers",
                limits.MAX_PARAMETERS,
            )
        if self.search.algorithm == "grid" and self.study is None:
            self._check_grid()
        check_search_stops(self)
        check_study(self)
        return self

    def _check_grid(self) -> None:
        unbounded = [name for name, p in self.iter_params() if not is_finite(p)]
        if unbounded:
            raise SpecError(
                "search.algorithm",
                f"grid search needs finite parameters; give a step to: {', '.join(unbounded)}",
            )
        points = grid_points(self) or 0
        if points > limits.MAX_GRID_POINTS:
            shown = f"{points:,}" if points < 10**15 else f"about 10^{len(str(points)) - 1}"
            raise SpecError(
                "search.algorithm",
                f"the grid has {shown} points, over the limit of {limits.MAX_GRID_POINTS:,} "
                "(max_grid_points): fewer choices, larger steps, or a random or bayesian search",
                limits.MAX_GRID_POINTS,
            )

    def iter_params(self) -> list[tuple[str, AnyParam]]:
        """Every searchable parameter of the spec, with its dotted path."""
        found: list[tuple[str, AnyParam]] = []

        def walk(prefix: str, model: StrictModel) -> None:
            for name in type(model).model_fields:
                value = getattr(model, name)
                if isinstance(value, StrictModel) and hasattr(value, "candidates"):
                    found.append((f"{prefix}{name}", value))
                elif isinstance(value, StrictModel):
                    walk(f"{prefix}{name}.", value)

        for section in ("model", "optimizer", "schedule", "training"):
            walk(f"{section}.", getattr(self, section))
        return found

    @property
    def is_single_configuration(self) -> bool:
        """True if every parameter is fixed: the job trains exactly one model."""
        return all(is_fixed(p) for _, p in self.iter_params())

    @property
    def initial_points(self) -> int:
        """Bayesian and TPE: the random trials before the model (the spec's, else the
        default of ``default_initial_points``)."""
        if self.search.num_initial_points is not None:
            return self.search.num_initial_points
        return default_initial_points(searched_dimensions(self), self.search.max_trials)

    def with_recorded_defaults(self) -> JobSpec:
        """This spec with the defaults the service chose written in (what a job records)."""
        if self.search.algorithm not in ("bayesian", "tpe") or self.search.num_initial_points:
            return self
        search = self.search.model_copy(update={"num_initial_points": self.initial_points})
        return self.model_copy(update={"search": search})

    @property
    def max_epochs(self) -> int:
        return int(upper_bound(self.training.epochs))
