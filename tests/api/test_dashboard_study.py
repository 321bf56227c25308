"""A technique study's job page: its variants' bars with intervals, curves and readings."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from db.models import JobStatus
from tests.api.helpers import SPEC, insert_job, insert_trial

START = datetime(2025, 1, 1, tzinfo=UTC)


def test_a_study_job_page_shows_its_variants_intervals_and_curves(client: TestClient) -> None:
    variants = {"he_normal": {}, "batch norm": {"model": {"batch_norm": "before"}}}
    spec = {**SPEC, "study": {"variants": variants, "baseline": None, "seeds": 3,
                              "confidence": 0.95}}  # fmt: skip
    job_id = insert_job(status=JobStatus.SUCCEEDED, started_at=START, spec=spec, max_trials=6)
    scores = {"he_normal": [0.860, 0.861, 0.859], "batch norm": [0.868, 0.870, 0.869]}
    for n in range(6):
        variant, seed = list(variants)[n % 2], n // 2
        insert_trial(job_id, n, score=scores[variant][seed], fit_duration_s=3.0, epochs=3,
                     hyperparameters={"variant": variant, "seed": seed})  # fmt: skip
    study = client.get(f"/ui/data/jobs/{job_id}").json()["study"]
    assert [v["name"] for v in study["variants"]] == ["he_normal", "batch norm"]
    means = study["figures"]["means"]
    dots, whiskers = means["series"]
    assert [b["value"] for b in dots["data"]] == [86.0, 86.9]  # points
    assert whiskers["type"] == "candlestick" and len(whiskers["data"]) == 2
    mean, _, low, high = whiskers["data"][1]
    assert low < mean < high
    assert means["xAxis"]["data"] == ["he_normal", "batch norm *"]
    window = means["dataZoom"][0]
    assert window["startValue"] < whiskers["data"][0][2] and window["endValue"] > high
    curves = study["figures"]["curves"]["series"]
    assert [(c["name"], len(c["data"])) for c in curves] == [("he_normal", 3), ("batch norm", 3)]
    assert study["reading"][0].startswith("batch norm: +0.90 points")
    search = insert_job(status=JobStatus.SUCCEEDED, started_at=START)
    assert client.get(f"/ui/data/jobs/{search}").json()["study"] is None
    page = client.get(f"/jobs/{job_id}").text
    assert 'id="study-card"' in page


def test_the_means_open_on_the_variants_near_the_baseline() -> None:
    from api.dashboard.study_figures import study_means

    def variant(name: str, mean: float, baseline: bool = False) -> dict:
        objective = {"n": 3, "mean": mean, "std": 0.002, "low": mean - 0.005, "high": mean + 0.005}
        return {"name": name, "is_baseline": baseline, "objective": objective}

    study = {"objective": "val_accuracy", "confidence": 0.95, "variants": [
        variant("defaults", 0.85, True), variant("zeros", 0.0925), variant("he", 0.864)]}  # fmt: skip
    window = study_means(study)["dataZoom"][0]
    assert 84 < window["startValue"] < 84.5 and 86.9 < window["endValue"] < 87.5
