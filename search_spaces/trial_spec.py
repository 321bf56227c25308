"""Any trial written back as a spec: the one-trial job that trains the same network the same way.

``trial_spec(spec, values, number)`` fixes every hyperparameter the job searched to the trial's
value: each hidden layer becomes an explicit ``model.layers`` entry (units, activation, the
initializer ``auto`` resolved to, batch norm, dropout, and their per-layer children), every other
parameter a fixed value (an inactive one its first candidate). The search becomes one random
trial with the job's seed, and ``training.seed`` the seed the trial trained with, so a seeded
trial gets the same score again. A Hyperband trial was trained in rounds, resumed from a
checkpoint: its spec trains the same network in one run of its final epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search_spaces.layer_spec import CHILD_NEEDS, auto_initializer
from search_spaces.schema import JobSpec
from search_spaces.training_spec import training_seed

#: shared hyperparameter name -> its place in the spec (layer parameters are in ``layers``).
SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    "input_standardize": ("model", "input", "standardize"),
    "input_batch_norm": ("model", "input", "batch_norm"),
    "dropout_kind": ("model", "dropout_kind"),
    "regularizer": ("model", "regularizer"),
    "regularization_factor": ("model", "regularization_factor"),
    "max_norm": ("model", "max_norm"),
    "optimizer": ("optimizer", "name"),
    "learning_rate": ("optimizer", "learning_rate"),
    "momentum": ("optimizer", "momentum"),
    "rho": ("optimizer", "rho"),
    "beta_1": ("optimizer", "beta_1"),
    "beta_2": ("optimizer", "beta_2"),
    "weight_decay": ("optimizer", "weight_decay"),
    "clipping": ("optimizer", "clipping"),
    "clip_threshold": ("optimizer", "clip_threshold"),
    "schedule": ("schedule", "kind"),
    "decay_epochs": ("schedule", "decay_epochs"),
    "power": ("schedule", "power"),
    "plateau_factor": ("schedule", "factor"),
    "plateau_patience": ("schedule", "patience"),
    "epochs": ("training", "epochs"),
    "batch_size": ("training", "batch_size"),
    "loss": ("training", "loss"),
}
#: per-layer values, each named alike as a hyperparameter's base and as a ``LayerSpec`` field.
LAYER_VALUES = (
    "activation",
    "leaky_alpha",
    "rrelu_lower",
    "rrelu_upper",
    "kernel_initializer",
    "batch_norm",
    "dropout",
)
VARIANCE_SCALING = {"vs_scale": "scale", "vs_mode": "mode", "vs_distribution": "distribution"}


@dataclass
class TrialSpec:
    """The spec of one trial, and whether it reproduces the trial's score exactly."""

    spec: dict[str, Any]
    exact: bool
    notes: list[str] = field(default_factory=list)


def _layer(values: dict[str, Any], index: int, units: int) -> dict[str, Any]:
    """Hidden layer ``index`` of the trial as a ``LayerSpec``: a per-layer value (``x_{i}``)
    wins over the shared one (``x``); ``units`` when the trial has none."""

    def get(base: str) -> Any:
        return values.get(f"{base}_{index}", values.get(base))

    layer: dict[str, Any] = {"units": get("units") or units}
    layer |= {name: value for name in LAYER_VALUES if (value := get(name)) is not None}
    if layer.get("kernel_initializer") == "auto":
        layer["kernel_initializer"] = auto_initializer(layer["activation"])
    if layer.get("kernel_initializer") == "variance_scaling":
        layer["variance_scaling"] = {
            name: get(base) for base, name in VARIANCE_SCALING.items() if get(base) is not None
        }
    # A child is only written with the parent value that uses it (the spec refuses it else).
    for child, (parent, value) in CHILD_NEEDS.items():
        if child in layer and layer.get(parent) != value:
            del layer[child]
    return layer


def _units(spec: JobSpec, index: int) -> int:
    """Layer ``index``'s units when a trial records none: the spec's own, or its first."""
    layer = spec.model.layer(index)
    return layer.units if layer is not None else int(spec.model.units.candidates()[0])


def _chosen(spec: JobSpec, path: tuple[str, ...], value: Any) -> Any:
    """``value``, or for a parameter the trial did not use, its first candidate."""
    if value is not None:
        return value
    param: Any = spec
    for key in path:
        param = getattr(param, key)
    return param.candidates()[0]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


def trial_spec(spec: JobSpec, values: dict[str, Any], number: int) -> TrialSpec:
    """The one-trial spec of trial ``number`` of a job on ``spec``, whose hyperparameters were
    ``values``."""
    data = spec.model_dump(mode="json")
    notes: list[str] = []
    model = data["model"]
    depth = int(values.get("depth") or spec.model.max_depth)
    model["layers"] = [_layer(values, i, _units(spec, i)) for i in range(depth)]
    for unused in ("depth", "units", "per_layer"):
        model.pop(unused, None)
    for name, path in SPEC_FIELDS.items():
        _set(data, path, _chosen(spec, path, values.get(name)))
    # The layers fix every per-layer value; the model's own are left fixed, not searched.
    for name in [*LAYER_VALUES, *(f"variance_scaling.{f}" for f in VARIANCE_SCALING.values())]:
        path = ("model", *name.split("."))
        _set(data, path, _chosen(spec, path, None))
    if "tuner/epochs" in values:
        _set(data, ("training", "epochs"), int(values["tuner/epochs"]))
        notes.append(
            "Hyperband trained this trial in rounds, resumed from checkpoints; this spec trains "
            "the same network in one run of its final epochs (the score may differ)"
        )
    data["training"]["seed"] = training_seed(spec.search.seed, spec.training.seed, number)
    if data["training"]["seed"] is None:
        notes.append("the search was unseeded: this spec trains the same network, not the same run")
    search = data["search"]
    search.update(
        algorithm="random",
        max_trials=1,
        top_k=1,
        num_initial_points=None,
        time_limit_s=None,
        confirm=None,
    )
    search["objective"], search["direction"] = spec.objective, spec.direction.value
    data["name"] = f"{spec.name or 'job'} trial {number}"[:100]
    return TrialSpec(spec=data, exact=not notes, notes=notes)
