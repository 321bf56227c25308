"""Spec -> Keras Tuner ``HyperParameters``: the flat, stable names every trial records.

``build_hyperparameters(spec)`` declares the whole space (the worker seeds the oracle with it);
``declare(spec, hp)`` does the same into an existing container and is what
``SpecHyperModel.build`` calls, so the names below are the only ones a trial ever has.

A fixed parameter (or one-value choice/range) becomes ``hp.Fixed``, a choice ``hp.Choice``
(``hp.Boolean`` for true/false), an int range ``hp.Int`` and a float range ``hp.Float``. A
parameter whose parent can never make it active is not declared; a parent fixed to an
activating value declares the child unconditionally.

=========================  ================================  =====================================
name                       spec field                        active when
=========================  ================================  =====================================
``input_standardize``      model.input.standardize           always
``input_batch_norm``       model.input.batch_norm            always
``depth``                  model.depth (len(layers))         always (Fixed with ``layers``)
``units``                  model.units                       always ("units" not in per_layer)
``units_{i}``              model.units / model.layers[i]     depth > i (per_layer or ``layers``)
``activation[_{i}]``       model.activation                  always / depth > i
``leaky_alpha[_{i}]``      model.leaky_alpha                 activation[_{i}] == leaky_relu
``rrelu_lower[_{i}]``      model.rrelu_lower                 activation[_{i}] == rrelu
``rrelu_upper[_{i}]``      model.rrelu_upper                 activation[_{i}] == rrelu
``kernel_initializer[_i]`` model.kernel_initializer          always / depth > i
``vs_scale[_{i}]``         model.variance_scaling.scale      kernel_initializer == variance_scaling
``vs_mode[_{i}]``          model.variance_scaling.mode       kernel_initializer == variance_scaling
``vs_distribution[_{i}]``  model.variance_scaling.distrib.   kernel_initializer == variance_scaling
``batch_norm[_{i}]``       model.batch_norm                  always / depth > i
``dropout[_{i}]``          model.dropout                     always / depth > i
``dropout_kind``           model.dropout_kind                some dropout rate can be > 0
``regularizer``            model.regularizer                 always
``regularization_factor``  model.regularization_factor       regularizer in l1, l2, l1_l2
``max_norm``               model.max_norm                    always
``optimizer``              optimizer.name                    always
``learning_rate``          optimizer.learning_rate           always
``momentum``               optimizer.momentum                optimizer in momentum, nesterov
``rho``                    optimizer.rho                     optimizer in rmsprop, adadelta
``beta_1``, ``beta_2``     optimizer.beta_1, beta_2          optimizer in adam, adamw, nadam, adamax
``weight_decay``           optimizer.weight_decay            optimizer == adamw
``clipping``               optimizer.clipping                always
``clip_threshold``         optimizer.clip_threshold          clipping != none
``schedule``               schedule.kind                     always
``decay_epochs``           schedule.decay_epochs             schedule in power, exponential
``power``                  schedule.power                    schedule == power
``plateau_factor``         schedule.factor                   schedule == plateau
``plateau_patience``       schedule.patience                 schedule == plateau
``epochs``                 training.epochs                   always
``batch_size``             training.batch_size               always
``loss``                   training.loss                     always (regression tasks only)
=========================  ================================  =====================================

``_{i}`` names (i = 0, 1, ...) are used for the parameters listed in ``model.per_layer``; the
per-layer activation (initializer) also makes its leaky_alpha/rrelu (vs_*) children per layer.
Layer ``i``'s parameters are conditional on ``depth`` in ``i+1..max`` unless every depth has it.
Piecewise ``boundaries``/``multipliers`` are lists, not hyperparameters: they come from the spec.

Sampling notes: an int range with ``log`` sampling and ``step > 1`` becomes a ``Choice`` of its
values (Keras Tuner would read the step as a multiplier); a float range's ``step`` is passed as is
(with log sampling Keras Tuner treats it as a multiplier).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import keras_tuner

from search_spaces.datasets import Task
from search_spaces.params import AnyParam, Choice, FloatRange, IntRange, fixed_value, is_fixed
from search_spaces.schema import JobSpec

#: (parent name, parent values that make the child active)
Condition = tuple[str, list[Any]]

REGULARIZED = ["l1", "l2", "l1_l2"]
MOMENTUM_OPTIMIZERS = ["momentum", "nesterov"]
RHO_OPTIMIZERS = ["rmsprop", "adadelta"]
BETA_OPTIMIZERS = ["adam", "adamw", "nadam", "adamax"]
DECAY_SCHEDULES = ["power", "exponential"]
CLIPPINGS = ["clipvalue", "clipnorm", "global_clipnorm"]


def layer_name(base: str, index: int, per_layer: bool) -> str:
    """``base`` for a shared parameter, ``base_{index}`` for a per-layer one."""
    return f"{base}_{index}" if per_layer else base


@contextmanager
def _scopes(hp: keras_tuner.HyperParameters, conditions: Sequence[Condition]) -> Iterator[None]:
    with ExitStack() as stack:
        for parent, values in conditions:
            stack.enter_context(hp.conditional_scope(parent, list(values)))
        yield


def register(
    hp: keras_tuner.HyperParameters,
    name: str,
    param: AnyParam,
    parent_name: str | None = None,
    parent_values: Sequence[Any] | None = None,
    *,
    conditions: Sequence[Condition] = (),
) -> Any:
    """Declare ``param`` as hyperparameter ``name``; return its current value (None if inactive).

    ``parent_name``/``parent_values`` add one condition; ``conditions`` gives nested ones (outer
    first; each parent must have been declared under the conditions before it).
    """
    scopes = list(conditions)
    if parent_name is not None:
        scopes.append((parent_name, list(parent_values or [])))
    with _scopes(hp, scopes):
        if is_fixed(param):
            return hp.Fixed(name, fixed_value(param))
        if isinstance(param, Choice) and all(isinstance(v, bool) for v in param.values):
            return hp.Boolean(name, default=param.values[0])  # Choice would turn them into 0/1
        if isinstance(param, Choice):
            return hp.Choice(name, list(param.values))
        if isinstance(param, IntRange):
            if param.sampling == "log" and param.step > 1:
                return hp.Choice(name, param.candidates())
            step = None if param.sampling == "log" else param.step
            return hp.Int(name, param.min, param.max, step=step, sampling=param.sampling)
        if isinstance(param, FloatRange):
            return hp.Float(name, param.min, param.max, step=param.step, sampling=param.sampling)
    raise TypeError(f"unknown parameter type {type(param).__name__}")


def child_conditions(
    parent_name: str,
    parent: AnyParam,
    active: Sequence[Any],
    outer: Sequence[Condition] = (),
) -> list[Condition] | None:
    """Conditions for a child active when ``parent`` takes one of ``active``.

    None: the parent can never activate it (do not declare it). Otherwise ``outer`` plus, unless
    every candidate of the parent activates it, the parent condition.
    """
    candidates = parent.candidates()
    hits = [v for v in candidates if v in active]
    if not hits:
        return None
    if len(hits) == len(candidates):
        return list(outer)
    return [*outer, (parent_name, hits)]


def depth_candidates(spec: JobSpec) -> list[int]:
    """Every number of hidden layers the spec allows."""
    if spec.model.layers is not None:
        return [len(spec.model.layers)]
    return sorted(set(spec.model.depth.candidates()))


def layer_conditions(spec: JobSpec, index: int) -> list[Condition]:
    """Conditions under which hidden layer ``index`` exists (empty: in every configuration)."""
    depths = depth_candidates(spec)
    deeper = [d for d in depths if d > index]
    return [] if len(deeper) == len(depths) else [("depth", deeper)]


def _declare_layer_param(
    hp: keras_tuner.HyperParameters, spec: JobSpec, base: str, param: AnyParam, index: int
) -> tuple[str, AnyParam, list[Condition]] | None:
    """Declare layer ``index``'s ``base`` (once, at index 0, for a shared one); its name, the
    parameter it was declared from, and its conditions."""
    per_layer = spec.model.is_per_layer(base)
    if not per_layer and index > 0:
        return None
    if per_layer:
        param = spec.model.layer_param(base, index, param)
    conds = layer_conditions(spec, index) if per_layer else []
    name = layer_name(base, index, per_layer)
    register(hp, name, param, conditions=conds)
    return name, param, conds


def _children(
    hp: keras_tuner.HyperParameters,
    spec: JobSpec,
    parent: tuple[str, AnyParam, list[Condition]],
    active: str,
    children: Sequence[tuple[str, str, AnyParam]],
    index: int,
) -> None:
    """Declare the ``children`` (hyperparameter base, spec field, shared parameter) of a
    declared ``parent``, active when it is ``active``; per layer when the parent is."""
    name, param, parent_conds = parent
    conds = child_conditions(name, param, [active], parent_conds)
    if conds is None:
        return
    suffix = f"_{index}" if name.endswith(f"_{index}") else ""  # no shared name ends in _<n>
    for base, field, shared in children:
        if suffix:
            shared = spec.model.layer_param(field, index, shared)
        register(hp, f"{base}{suffix}", shared, conditions=conds)


def _declare_model(spec: JobSpec, hp: keras_tuner.HyperParameters) -> None:
    model = spec.model
    register(hp, "input_standardize", model.input.standardize)
    register(hp, "input_batch_norm", model.input.batch_norm)
    max_depth = max(depth_candidates(spec))
    if model.layers is not None:
        hp.Fixed("depth", len(model.layers))
        for i in range(len(model.layers)):
            hp.Fixed(f"units_{i}", model.layer(i).units)  # type: ignore[union-attr]
    else:
        register(hp, "depth", model.depth)
    vs = model.variance_scaling
    for i in range(max_depth):
        if model.layers is None:
            _declare_layer_param(hp, spec, "units", model.units, i)
        act = _declare_layer_param(hp, spec, "activation", model.activation, i)
        if act is not None:
            _children(
                hp, spec, act, "leaky_relu", [("leaky_alpha", "leaky_alpha", model.leaky_alpha)], i
            )
            _children(
                hp,
                spec,
                act,
                "rrelu",
                [
                    ("rrelu_lower", "rrelu_lower", model.rrelu_lower),
                    ("rrelu_upper", "rrelu_upper", model.rrelu_upper),
                ],
                i,
            )
        init = _declare_layer_param(hp, spec, "kernel_initializer", model.kernel_initializer, i)
        if init is not None:
            _children(
                hp,
                spec,
                init,
                "variance_scaling",
                [
                    ("vs_scale", "variance_scaling.scale", vs.scale),
                    ("vs_mode", "variance_scaling.mode", vs.mode),
                    ("vs_distribution", "variance_scaling.distribution", vs.distribution),
                ],
                i,
            )
        _declare_layer_param(hp, spec, "batch_norm", model.batch_norm, i)
        _declare_layer_param(hp, spec, "dropout", model.dropout, i)
    layers = [model.layer(i) for i in range(len(model.layers or []))]
    fixed_rates = [layer.dropout or 0.0 for layer in layers if layer is not None]
    if max([*model.dropout.candidates(), *fixed_rates]) > 0:
        register(hp, "dropout_kind", model.dropout_kind)
    register(hp, "regularizer", model.regularizer)
    cond = child_conditions("regularizer", model.regularizer, REGULARIZED)
    if cond is not None:
        register(hp, "regularization_factor", model.regularization_factor, conditions=cond)
    register(hp, "max_norm", model.max_norm)


def _declare_optimizer(spec: JobSpec, hp: keras_tuner.HyperParameters) -> None:
    opt = spec.optimizer
    register(hp, "optimizer", opt.name)
    register(hp, "learning_rate", opt.learning_rate)
    for name, param, active in (
        ("momentum", opt.momentum, MOMENTUM_OPTIMIZERS),
        ("rho", opt.rho, RHO_OPTIMIZERS),
        ("beta_1", opt.beta_1, BETA_OPTIMIZERS),
        ("beta_2", opt.beta_2, BETA_OPTIMIZERS),
        ("weight_decay", opt.weight_decay, ["adamw"]),
    ):
        cond = child_conditions("optimizer", opt.name, active)
        if cond is not None:
            register(hp, name, param, conditions=cond)
    register(hp, "clipping", opt.clipping)
    cond = child_conditions("clipping", opt.clipping, CLIPPINGS)
    if cond is not None:
        register(hp, "clip_threshold", opt.clip_threshold, conditions=cond)


def _declare_schedule(spec: JobSpec, hp: keras_tuner.HyperParameters) -> None:
    sched = spec.schedule
    register(hp, "schedule", sched.kind)
    for name, param, active in (
        ("decay_epochs", sched.decay_epochs, DECAY_SCHEDULES),
        ("power", sched.power, ["power"]),
        ("plateau_factor", sched.factor, ["plateau"]),
        ("plateau_patience", sched.patience, ["plateau"]),
    ):
        cond = child_conditions("schedule", sched.kind, active)
        if cond is not None:
            register(hp, name, param, conditions=cond)


def declare(spec: JobSpec, hp: keras_tuner.HyperParameters) -> None:
    """Declare every hyperparameter of ``spec`` into ``hp`` (idempotent: re-declaring reads)."""
    _declare_model(spec, hp)
    _declare_optimizer(spec, hp)
    _declare_schedule(spec, hp)
    register(hp, "epochs", spec.training.epochs)
    register(hp, "batch_size", spec.training.batch_size)
    if spec.task is Task.REGRESSION:
        register(hp, "loss", spec.training.loss)


def build_hyperparameters(spec: JobSpec) -> keras_tuner.HyperParameters:
    """The whole search space of ``spec``, each hyperparameter at its default value."""
    hp = keras_tuner.HyperParameters()
    declare(spec, hp)
    return hp


def value(hp: keras_tuner.HyperParameters, name: str, default: Any = None) -> Any:
    """The current value of ``name``, or ``default`` when it is inactive or undeclared."""
    return hp.values.get(name, default) if name in hp else default


def hyperparameters_from_values(
    spec: JobSpec, values: Mapping[str, Any]
) -> keras_tuner.HyperParameters:
    """The space of ``spec`` set to ``values`` (e.g. a recorded trial's), ready for ``build``.

    Active hyperparameters missing from ``values`` take their default; inactive ones are dropped.
    Unknown names raise ``KeyError``.
    """
    hp = build_hyperparameters(spec)
    unknown = set(values) - {h.name for h in hp.space}
    if unknown:
        raise KeyError(f"not hyperparameters of this spec: {', '.join(sorted(unknown))}")
    resolved: dict[str, Any] = {}
    for h in hp.space:  # parents are declared before their children
        if all(c.is_active(resolved) for c in h.conditions):
            resolved[h.name] = values.get(h.name, h.default)
    hp.values = resolved
    return hp
