"""422 bodies name the field (dotted, no union tags) and the limit; 413 for oversized bodies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.errors import dotted_field
from search_spaces import limits
from tests.api.conftest import ClientFactory
from tests.api.helpers import SPEC, job_count

API = "/api/v1"


def _spec(**sections: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    for name, value in sections.items():
        spec[name] = {**spec.get(name, {}), **value}
    return spec


def _errors(client: TestClient, body: Any) -> list[dict[str, Any]]:
    response = client.post(f"{API}/jobs", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error"] == "validation_error"
    assert job_count() == 0
    return payload["detail"]


@pytest.mark.parametrize(
    ("sections", "field", "limit"),
    [
        ({"search": {"max_trials": limits.MAX_TRIALS + 1}}, "search.max_trials", limits.MAX_TRIALS),
        ({"model": {"units": {"type": "int", "min": 1, "max": 100_000}}}, "model.units.max", 4096),
        ({"model": {"units": 5000}}, "model.units", limits.MAX_UNITS),
        ({"training": {"epochs": 501}}, "training.epochs", limits.MAX_EPOCHS),
        ({"training": {"batch_size": {"type": "choice", "values": [32, 10_000]}}}, "training.batch_size.values.1", limits.MAX_BATCH_SIZE),
        ({"model": {"activation": {"type": "choice", "values": ["relu"] * 33}}}, "model.activation.values", limits.MAX_CHOICES),
        # a rule spanning fields (worst-case parameter count) is blamed on the section
        ({"model": {"layers": [4096] * 20}}, "model", limits.MAX_PARAMETERS),
        # a grid is counted, never built: 9e297 points are refused at once
        ({"search": {"algorithm": "grid"}, "optimizer": {"learning_rate": {"type": "float", "min": 0.001, "max": 0.01, "step": 1e-300}}}, "search.algorithm", limits.MAX_GRID_POINTS),
    ],
)  # fmt: skip
def test_over_limit_names_field_and_limit(
    client: TestClient, sections: dict[str, Any], field: str, limit: int
) -> None:
    spec = copy.deepcopy(SPEC)
    spec.update(sections)
    detail = _errors(client, spec)
    match = [d for d in detail if d["field"] == field]
    assert match, detail
    assert match[0]["limit"] == limit
    assert match[0]["message"]
    assert match[0]["type"]


def test_cross_field_rule_uses_ctx_field(client: TestClient) -> None:
    detail = _errors(client, _spec(dataset={"name": "nope"}))
    assert detail == [
        {
            "field": "dataset.name",
            "message": detail[0]["message"],
            "limit": None,
            "type": "spec_rule",
        }
    ]
    assert "unknown dataset 'nope'" in detail[0]["message"]


def test_unknown_fields_and_bad_types(client: TestClient) -> None:
    detail = _errors(client, {**SPEC, "bogus": 1, "search": {"max_trials": "many"}})
    by_field = {d["field"]: d for d in detail}
    assert by_field["bogus"]["type"] == "extra_forbidden"
    assert by_field["search.max_trials"]["type"] == "int_type"  # strict: no coercion

    detail = _errors(client, _spec(model={"units": {"type": "int", "min": 8, "max": 16, "foo": 1}}))
    assert detail[0]["field"] == "model.units.foo"
    detail = _errors(client, _spec(training={"epochs": "ten"}))
    assert detail[0]["field"] == "training.epochs"
    assert detail[0]["type"] == "int_type"


def test_not_json_or_not_an_object(client: TestClient) -> None:
    response = client.post(
        f"{API}/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    (problem,) = response.json()["detail"]
    assert problem["field"] == "body"
    assert problem["message"] == "Expecting property name enclosed in double quotes at character 1"
    assert _errors(client, [1, 2])[0]["field"] == ""


def test_dotted_field() -> None:
    assert dotted_field(("body", "model", "units", "int", "max")) == "model.units.max"
    assert dotted_field(("body", "model", "units", "fixed", "value")) == "model.units"
    assert dotted_field(("body", "schedule", "multipliers", 2)) == "schedule.multipliers.2"
    assert dotted_field(("query", "limit")) == "limit"


def test_oversized_body_is_413(sqlite_url: str, make_client: ClientFactory) -> None:
    client = make_client(max_request_bytes=2048)
    big = {**SPEC, "name": "x" * 4000}
    response = client.post(f"{API}/jobs", json=big)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"

    def chunks():  # no Content-Length: counted as streamed
        for _ in range(10):
            yield b" " * 1000

    response = client.post(
        f"{API}/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert job_count() == 0


@pytest.mark.parametrize(
    "name", ["", "   ", " leading", "next\u0085line", "evil\u202etxt.exe", "zero\u200bwidth", "a/b", "tag\U000e0041"]
)  # fmt: skip
def test_names_refuse_control_and_format_characters(client: TestClient, name: str) -> None:
    (detail,) = _errors(client, {**SPEC, "name": name})
    assert detail["field"] == "name"
    assert detail["message"] == limits.NAME_RULE


@pytest.mark.parametrize("name", ["résumé 😀 v2", "lr sweep (adam) #3", "数据集"])
def test_names_may_be_any_visible_text(client: TestClient, name: str) -> None:
    response = client.post(f"{API}/jobs", json={**SPEC, "name": name})
    assert response.status_code == 202, response.text
    assert client.get(response.headers["Location"]).json()["name"] == name


def test_every_unprintable_character_is_refused_in_a_name() -> None:
    import re
    import unicodedata

    pattern = re.compile(limits.NAME_PATTERN)
    for low, high in limits.UNPRINTABLE_RANGES:
        for code in range(low, high + 1):
            assert not pattern.match(f"a{chr(code)}b"), hex(code)
    # and every such character this Python knows of in the BMP (Unicode grows; the list is 14.0)
    for code in range(0x10000):
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp"):
            assert not pattern.match(f"a{chr(code)}b"), hex(code)


def _study(**study: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["model"] = {"depth": 1, "units": 8}
    del spec["search"]["max_trials"]
    spec["study"] = {"variants": {"base": {}, "he": {"model": {"kernel_initializer": "he_normal"}}},
                     **study}  # fmt: skip
    return spec


@pytest.mark.parametrize(
    ("study", "field", "says"),
    [
        ({"variants": {"a": {}, "b": {"model": {"units": {"type": "choice", "values": [4, 8]}}}}},
         "study.variants.b", "fix these searched parameters: model.units"),
        ({"variants": {"a": {}, "b": {"model": {"activation": "nope"}}}},
         "study.variants.b.model.activation", "relu"),
        ({"variants": {"a": {}, "b": {"dataset": {"name": "digits"}}}},
         "study.variants.b", "same data"),
        ({"variants": {"a": {}, "../b": {}}}, "study.variants", "variant name"),
        ({"baseline": "nope"}, "study.baseline", "not one of the variants"),
        ({"variants": {str(i): {} for i in range(limits.MAX_STUDY_VARIANTS + 1)}},
         "study.variants", str(limits.MAX_STUDY_VARIANTS)),
        ({"seeds": limits.MAX_STUDY_SEEDS + 1}, "study.seeds", str(limits.MAX_STUDY_SEEDS)),
        ({"seeds": 1}, "study.seeds", "2"),
        ({"variants": {"a": {}, "b": {"model": 5}}}, "study.variants.b.model", "an object"),
    ],
)  # fmt: skip
def test_a_bad_study_is_refused_naming_its_field(
    client: TestClient, study: dict[str, Any], field: str, says: str
) -> None:
    (error,) = _errors(client, _study(**study))
    assert error["field"] == field, error
    assert says in error["message"], error


def test_a_study_runs_variants_times_seeds_trials(client: TestClient) -> None:
    other = _study()
    other["search"]["max_trials"] = 5
    (error,) = _errors(client, other)
    assert error["field"] == "search.max_trials" and "2 variants x 3 seeds = 6" in error["message"]
    searched = _study()
    searched["search"]["algorithm"] = "bayesian"
    (error,) = _errors(client, searched)
    assert error["field"] == "search.algorithm" and "no search algorithm" in error["message"]
    created = client.post(f"{API}/jobs", json=_study(seeds=4))
    assert created.status_code == 202, created.text
    assert client.get(created.json()["url"]).json()["max_trials"] == 8


def test_confirming_is_for_a_search_and_counts_in_the_jobs_trials(client: TestClient) -> None:
    hyperband = _spec(search={"algorithm": "hyperband", "confirm": {"top_k": 2, "seeds": 2}})
    (error,) = _errors(client, hyperband)
    assert error["field"] == "search.confirm" and "hyperband" in error["message"]
    study = _study()
    study["search"]["confirm"] = {"top_k": 1, "seeds": 2}
    (error,) = _errors(client, study)
    assert error["field"] == "search.confirm" and "study" in error["message"]
    (error,) = _errors(client, _spec(search={"confirm": {"top_k": 6}}))
    assert error["field"] == "search.confirm.top_k" and error["limit"] == limits.MAX_TOP_K
    created = client.post(f"{API}/jobs", json=_spec(search={"confirm": {"top_k": 2, "seeds": 3}}))
    assert created.status_code == 202, created.text
    assert client.get(created.json()["url"]).json()["max_trials"] == 3 + 2 * 3


def test_pruners_and_stop_conditions_are_checked_against_the_search(client: TestClient) -> None:
    (error,) = _errors(client, _spec(search={"algorithm": "hyperband", "pruner": {"kind": "asha"}}))
    assert error["field"] == "search.pruner" and "hyperband" in error["message"]
    study = _study()
    study["search"]["pruner"] = {"kind": "median"}
    (error,) = _errors(client, study)
    assert error["field"] == "search.pruner" and "study" in error["message"]
    study = _study()
    study["search"]["target"] = 0.9
    (error,) = _errors(client, study)
    assert error["field"] == "search.target"
    (error,) = _errors(client, _spec(search={"multivariate": True}))
    assert error["field"] == "search.multivariate" and "tpe" in error["message"]
    (error,) = _errors(client, _spec(search={"pruner": {"kind": "asha", "reduction_factor": 11}}))
    assert "reduction_factor" in error["field"] and error["limit"] == 10
    (error,) = _errors(client, _spec(search={"pruner": {"kind": "hyperband"}}))
    assert error["field"].startswith("search.pruner")
    (error,) = _errors(client, _spec(search={"patience_trials": 0}))
    assert error["field"] == "search.patience_trials"
    # a pruner that could never stop a trial
    never = _spec(search={"pruner": {"kind": "asha", "min_epochs": 5}})
    never["training"] = {"epochs": 5}
    (error,) = _errors(client, never)
    assert error["field"] == "search.pruner.min_epochs" and "5" in error["message"]
    late = _spec(search={"pruner": {"kind": "median", "warmup_epochs": 4}})
    late["training"] = {"epochs": 5}
    (error,) = _errors(client, late)
    assert error["field"] == "search.pruner.warmup_epochs"
    reverse = _spec(
        search={"algorithm": "tpe"},
        optimizer={
            "beta_2": {
                "type": "float",
                "min": 0.9,
                "max": 0.99,
                "step": 1.01,
                "sampling": "reverse_log",
            }
        },
    )
    (error,) = _errors(client, reverse)
    assert error["field"] == "search.algorithm" and "beta_2" in error["message"]
    body = _spec(
        search={
            "algorithm": "tpe",
            "multivariate": True,
            "pruner": {"kind": "median", "startup_trials": 2},
            "target": 0.95,
            "patience_trials": 4,
        }
    )
    created = client.post(f"{API}/jobs", json=body)
    assert created.status_code == 202, created.text
    job = client.get(created.json()["url"]).json()
    assert job["algorithm"] == "tpe" and job["ended_by"] is None
    assert job["spec"]["search"]["pruner"]["warmup_epochs"] == 0
    # the random start TPE used is recorded, as Bayesian's is
    assert job["spec"]["search"]["num_initial_points"] >= 2
