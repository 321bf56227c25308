"""Rule-of-thumb advice on a spec (TECHNIQUES.md): warnings, never errors.

Rules look at every value a parameter CAN take, so a search that includes a poor combination
is flagged. Pure: no Keras or TensorFlow import (the API process calls it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import BaseModel, ConfigDict

from search_spaces.params import AnyParam, is_fixed, upper_bound
from search_spaces.schema import JobSpec

RELU_FAMILY = frozenset({"relu", "leaky_relu", "prelu", "rrelu", "elu", "gelu", "swish"})
SATURATING = frozenset({"sigmoid", "tanh"})
SGD_FAMILY = frozenset({"sgd", "momentum", "nesterov"})
ADAM_FAMILY = frozenset({"adam", "adamw", "nadam", "adamax", "rmsprop"})
SELU_INITS = frozenset({"lecun_normal", "auto"})
GLOROT_LECUN = frozenset({"glorot_uniform", "glorot_normal", "lecun_uniform", "lecun_normal"})
DEEP = 5
SGD_HIGH_LR = 0.01
ADAM_HIGH_LR = 0.003
NO_EARLY_STOPPING_EPOCHS = 50


class Advice(BaseModel):
    """One piece of advice: a stable ``code``, a short message and the fields it concerns."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    fields: list[str]


def _can(param: AnyParam, *values: object) -> bool:
    return any(v in values for v in param.candidates())


def _always(param: AnyParam, value: object) -> bool:
    return is_fixed(param) and param.candidates()[0] == value


def _any_other(param: AnyParam, allowed: frozenset[str] | set[str]) -> bool:
    return any(v not in allowed for v in param.candidates())


Rule = Callable[[JobSpec], Iterator[Advice]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


@rule
def _selu_init(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    if _can(m.activation, "selu") and _any_other(m.kernel_initializer, SELU_INITS):
        yield Advice(
            code="selu_init",
            message="selu without lecun_normal init does not self-normalize; use lecun_normal or auto",
            fields=["model.activation", "model.kernel_initializer"],
        )


@rule
def _selu_batch_norm(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    if not _can(m.activation, "selu"):
        return
    fields = []
    if _any_other(m.batch_norm, {"none"}):
        fields.append("model.batch_norm")
    if _can(m.input.batch_norm, True):
        fields.append("model.input.batch_norm")
    if fields:
        yield Advice(
            code="selu_batch_norm",
            message="selu self-normalizes; batch norm (before or after) breaks that and only slows it",
            fields=["model.activation", *fields],
        )


@rule
def _selu_dropout(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    if (
        _can(m.activation, "selu")
        and upper_bound(m.dropout) > 0
        and _can(m.dropout_kind, "dropout")
    ):
        yield Advice(
            code="selu_dropout",
            message="selu with plain dropout loses self-normalization; use dropout_kind alpha_dropout",
            fields=["model.activation", "model.dropout_kind"],
        )


@rule
def _selu_unscaled(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    if _can(m.activation, "selu") and _can(m.input.standardize, False):
        yield Advice(
            code="selu_unscaled_inputs",
            message="selu self-normalizes only on standardized inputs; set input.standardize true",
            fields=["model.activation", "model.input.standardize"],
        )


@rule
def _constant_init(spec: JobSpec) -> Iterator[Advice]:
    if _can(spec.model.kernel_initializer, "zeros", "ones"):
        yield Advice(
            code="constant_init",
            message="zeros/ones init makes every neuron of a layer identical: the net does not learn",
            fields=["model.kernel_initializer"],
        )


@rule
def _relu_init(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    init = m.kernel_initializer
    if (
        is_fixed(init)
        and init.candidates()[0] in GLOROT_LECUN
        and any(a in RELU_FAMILY for a in m.activation.candidates())
    ):
        yield Advice(
            code="relu_init",
            message=f"ReLU-family activations train better with he_normal/he_uniform than "
            f"{init.candidates()[0]}; or use kernel_initializer auto",
            fields=["model.activation", "model.kernel_initializer"],
        )


@rule
def _saturating_deep(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    if m.max_depth >= DEEP and _can(m.activation, *SATURATING):
        yield Advice(
            code="saturating_deep",
            message=f"sigmoid/tanh over {m.max_depth} hidden layers invites vanishing gradients; "
            "prefer relu-family, elu or selu",
            fields=["model.activation", "model.layers" if m.layers else "model.depth"],
        )


@rule
def _relu_high_lr(spec: JobSpec) -> Iterator[Advice]:
    opt = spec.optimizer
    if not _can(spec.model.activation, "relu"):
        return
    lr = upper_bound(opt.learning_rate)
    names = set(opt.name.candidates())
    if (names & SGD_FAMILY and lr > SGD_HIGH_LR) or (names & ADAM_FAMILY and lr > ADAM_HIGH_LR):
        yield Advice(
            code="relu_high_learning_rate",
            message=f"relu with learning rates up to {lr:g} risks dying neurons; lower it or use "
            "leaky_relu/elu",
            fields=["model.activation", "optimizer.learning_rate"],
        )


@rule
def _adagrad_deep(spec: JobSpec) -> Iterator[Advice]:
    if _can(spec.optimizer.name, "adagrad") and spec.model.max_depth >= DEEP:
        yield Advice(
            code="adagrad_deep",
            message="adagrad often stops learning too early on deep nets; prefer rmsprop, adam or nadam",
            fields=["optimizer.name"],
        )


@rule
def _unscaled_inputs(spec: JobSpec) -> Iterator[Advice]:
    inp = spec.model.input
    scaled = (
        inp.rescale is not None
        or _always(inp.batch_norm, True)
        or _always(spec.model.batch_norm, "before_dense")
    )
    if _can(inp.standardize, False) and not scaled:
        yield Advice(
            code="unscaled_inputs",
            message="unscaled inputs slow convergence badly; set input.standardize true "
            "(or input.rescale, e.g. 1/255 for pixels)",
            fields=["model.input.standardize"],
        )


@rule
def _input_batch_norm_twice(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    if _can(m.input.batch_norm, True) and _can(m.batch_norm, "before_dense"):
        yield Advice(
            code="input_batch_norm_twice",
            message="batch_norm before_dense already normalizes the first Dense layer's input; "
            "input.batch_norm adds a second BatchNormalization on the same values",
            fields=["model.input.batch_norm", "model.batch_norm"],
        )


@rule
def _alpha_dropout_non_selu(spec: JobSpec) -> Iterator[Advice]:
    m = spec.model
    if (
        upper_bound(m.dropout) > 0
        and _can(m.dropout_kind, "alpha_dropout")
        and _any_other(m.activation, {"selu"})
    ):
        yield Advice(
            code="alpha_dropout_non_selu",
            message="alpha_dropout is made for selu; use plain dropout with other activations",
            fields=["model.dropout_kind", "model.activation"],
        )


@rule
def _no_early_stopping(spec: JobSpec) -> Iterator[Advice]:
    if not spec.training.early_stopping.enabled and spec.max_epochs > NO_EARLY_STOPPING_EPOCHS:
        yield Advice(
            code="no_early_stopping",
            message=f"up to {spec.max_epochs} epochs without early stopping wastes time and "
            "overfits; enable training.early_stopping",
            fields=["training.early_stopping.enabled", "training.epochs"],
        )


@rule
def _hyperband_few_epochs(spec: JobSpec) -> Iterator[Advice]:
    if spec.search.algorithm == "hyperband" and spec.max_epochs < 3:
        yield Advice(
            code="hyperband_few_epochs",
            message="hyperband needs several epochs to prune on; with fewer than 3 use random search",
            fields=["search.algorithm", "training.epochs"],
        )


@rule
def _plateau_patience(spec: JobSpec) -> Iterator[Advice]:
    sched, stop = spec.schedule, spec.training.early_stopping
    if (
        _can(sched.kind, "plateau")
        and stop.enabled
        and min(sched.patience.candidates()) >= stop.patience
    ):
        yield Advice(
            code="plateau_after_early_stop",
            message="early stopping ends the trial before the plateau schedule lowers the learning "
            "rate; make schedule.patience smaller than early_stopping.patience",
            fields=["schedule.patience", "training.early_stopping.patience"],
        )


def advise(spec: JobSpec) -> list[Advice]:
    """Every rule of thumb the spec's space can break, in a stable order."""
    return [advice for check in RULES for advice in check(spec)]


@rule
def _bayesian_all_random(spec: JobSpec) -> Iterator[Advice]:
    search = spec.search
    if search.algorithm in ("bayesian", "tpe") and spec.initial_points >= search.max_trials:
        yield Advice(
            code="bayesian_all_random",
            message=f"the random start ({spec.initial_points} trials) covers the whole budget of "
            f"{search.max_trials} trials: the model (Gaussian process, TPE) never chooses one, so this is a "
            "random search; lower search.num_initial_points or raise search.max_trials",
            fields=["search.num_initial_points", "search.max_trials"],
        )
