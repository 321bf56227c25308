"""Advice: each rule of thumb fires on a spec that breaks it and not on a clean one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from search_spaces.advice import Advice, advise
from tests.search_spaces.helpers import make_spec

CLEAN: dict[str, Any] = {
    "model": {"activation": "relu", "kernel_initializer": "he_normal"},
    "optimizer": {"name": "adam", "learning_rate": 1e-3},
}
SELU_CLEAN: dict[str, Any] = {
    "model": {
        "activation": "selu",
        "kernel_initializer": "lecun_normal",
        "dropout": 0.1,
        "dropout_kind": "alpha_dropout",
    },
}


def codes(**sections: Any) -> set[str]:
    return {a.code for a in advise(make_spec(**sections))}


def with_clean(**sections: Any) -> dict[str, Any]:
    merged = {key: dict(value) for key, value in CLEAN.items()}
    for key, value in sections.items():
        merged[key] = {**merged.get(key, {}), **value}
    return merged


def test_clean_specs_get_no_advice() -> None:
    assert advise(make_spec(**CLEAN)) == []
    assert advise(make_spec(**SELU_CLEAN)) == []
    auto = {
        "model": {
            "activation": {"type": "choice", "values": ["relu", "selu"]},
            "kernel_initializer": "auto",
        }
    }
    assert advise(make_spec(**auto)) == []


CASES: list[tuple[str, dict[str, Any]]] = [
    ("selu_init", {"model": {**SELU_CLEAN["model"], "kernel_initializer": "he_normal"}}),
    (
        "selu_init",
        {
            "model": {
                **SELU_CLEAN["model"],
                "kernel_initializer": {
                    "type": "choice",
                    "values": ["lecun_normal", "glorot_uniform"],
                },
            }
        },
    ),
    ("selu_batch_norm", {"model": {**SELU_CLEAN["model"], "batch_norm": "before"}}),
    ("selu_batch_norm", {"model": {**SELU_CLEAN["model"], "batch_norm": "after"}}),
    ("selu_batch_norm", {"model": {**SELU_CLEAN["model"], "input": {"batch_norm": True}}}),
    ("selu_dropout", {"model": {**SELU_CLEAN["model"], "dropout_kind": "dropout"}}),
    ("selu_unscaled_inputs", {"model": {**SELU_CLEAN["model"], "input": {"standardize": False}}}),
    ("constant_init", with_clean(model={"kernel_initializer": "zeros"})),
    (
        "constant_init",
        with_clean(
            model={"kernel_initializer": {"type": "choice", "values": ["he_normal", "ones"]}}
        ),
    ),
    ("relu_init", with_clean(model={"kernel_initializer": "glorot_uniform"})),
    (
        "relu_init",
        with_clean(model={"activation": "leaky_relu", "kernel_initializer": "lecun_uniform"}),
    ),
    (
        "saturating_deep",
        with_clean(
            model={"activation": "tanh", "kernel_initializer": "glorot_uniform", "depth": 5}
        ),
    ),
    (
        "saturating_deep",
        with_clean(
            model={
                "activation": {"type": "choice", "values": ["relu", "sigmoid"]},
                "depth": {"type": "int", "min": 1, "max": 8},
            }
        ),
    ),
    ("relu_high_learning_rate", with_clean(optimizer={"name": "sgd", "learning_rate": 0.05})),
    (
        "relu_high_learning_rate",
        with_clean(
            optimizer={
                "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"}
            }
        ),
    ),
    ("adagrad_deep", with_clean(optimizer={"name": "adagrad"}, model={"depth": 6})),
    ("unscaled_inputs", with_clean(model={"input": {"standardize": False}})),
    (
        "unscaled_inputs",
        with_clean(model={"input": {"standardize": {"type": "choice", "values": [True, False]}}}),
    ),
    (
        "input_batch_norm_twice",
        with_clean(model={"input": {"batch_norm": True}, "batch_norm": "before_dense"}),
    ),
    ("alpha_dropout_non_selu", with_clean(model={"dropout": 0.2, "dropout_kind": "alpha_dropout"})),
    (
        "no_early_stopping",
        with_clean(training={"epochs": 100, "early_stopping": {"enabled": False}}),
    ),
    ("hyperband_few_epochs", with_clean(search={"algorithm": "hyperband"}, training={"epochs": 2})),
    (
        "plateau_after_early_stop",
        with_clean(
            schedule={"kind": "plateau", "patience": 5},
            training={"early_stopping": {"patience": 5}},
        ),
    ),
]


@pytest.mark.parametrize(
    ("code", "sections"), CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)]
)
def test_rule_fires(code: str, sections: dict[str, Any]) -> None:
    found = {a.code: a for a in advise(make_spec(**sections))}
    assert code in found, found
    advice = found[code]
    assert advice.message and advice.fields
    assert all("." in field for field in advice.fields)


@pytest.mark.parametrize(
    ("code", "sections"),
    [
        (
            "relu_init",
            with_clean(model={"activation": "tanh", "kernel_initializer": "glorot_uniform"}),
        ),
        (
            "relu_init",
            with_clean(
                model={
                    "kernel_initializer": {
                        "type": "choice",
                        "values": ["he_normal", "glorot_uniform"],
                    }
                }
            ),
        ),
        (
            "saturating_deep",
            with_clean(
                model={"activation": "tanh", "kernel_initializer": "glorot_uniform", "depth": 4}
            ),
        ),
        ("relu_high_learning_rate", with_clean(optimizer={"name": "sgd", "learning_rate": 0.01})),
        (
            "relu_high_learning_rate",
            with_clean(model={"activation": "leaky_relu"}, optimizer={"learning_rate": 0.1}),
        ),
        ("adagrad_deep", with_clean(optimizer={"name": "adagrad"}, model={"depth": 4})),
        (
            "unscaled_inputs",
            with_clean(model={"input": {"standardize": False, "batch_norm": True}}),
        ),
        (
            "unscaled_inputs",
            with_clean(model={"input": {"standardize": False, "rescale": 1 / 255}}),
        ),
        (
            "unscaled_inputs",
            with_clean(model={"input": {"standardize": False}, "batch_norm": "before_dense"}),
        ),
        (
            "input_batch_norm_twice",
            with_clean(model={"input": {"batch_norm": True}, "batch_norm": "after"}),
        ),
        (
            "alpha_dropout_non_selu",
            with_clean(model={"dropout": 0.0, "dropout_kind": "alpha_dropout"}),
        ),
        ("no_early_stopping", with_clean(training={"epochs": 100})),
        (
            "no_early_stopping",
            with_clean(training={"epochs": 50, "early_stopping": {"enabled": False}}),
        ),
        (
            "hyperband_few_epochs",
            with_clean(search={"algorithm": "hyperband"}, training={"epochs": 3}),
        ),
        (
            "plateau_after_early_stop",
            with_clean(
                schedule={"kind": "plateau", "patience": 2},
                training={"early_stopping": {"patience": 5}},
            ),
        ),
    ],
)
def test_rule_quiet_near_the_edge(code: str, sections: dict[str, Any]) -> None:
    assert code not in {a.code for a in advise(make_spec(**sections))}


def test_default_spec_advises_he_init() -> None:
    assert codes() == {"relu_init"}


def test_advice_serializes() -> None:
    advice = advise(make_spec(**with_clean(model={"kernel_initializer": "zeros"})))
    assert json.loads(advice[0].model_dump_json())["code"] == "constant_init"
    assert isinstance(advice[0], Advice)


def test_pure_modules_do_not_load_tensorflow() -> None:
    code = (
        "import sys, search_spaces.schema, search_spaces.advice, search_spaces.params, "
        "search_spaces.datasets, search_spaces.limits, search_spaces.errors\n"
        "bad = [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
