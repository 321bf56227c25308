"""The dashboard in a real headless Chromium that cannot leave the service, on real jobs run by
a real worker, in keys mode: sign-in, live updates without reload, every plot drawn with one
item per trial, the trial page (model download, predict form), comparison, a dataset, and
another owner seeing nothing. Set HPSEARCH_SCREENSHOTS=DIR to keep the pages' screenshots
there (docs/ holds the committed ones)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import offline_page
from tests.e2e.service import Service, start_service

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SPEC: dict[str, Any] = {
    "name": "iris-dashboard",
    "dataset": {"name": "iris"},
    "model": {
        "depth": {"type": "int", "min": 1, "max": 2},
        "units": {"type": "choice", "values": [4, 8]},
        "activation": {"type": "choice", "values": ["relu", "tanh"]},
    },
    "optimizer": {"learning_rate": {"type": "float", "min": 0.001, "max": 0.1, "sampling": "log"}},
    "training": {"epochs": 3, "batch_size": 16},
    "search": {"algorithm": "random", "max_trials": 8, "seed": 3},
}
CSV = "sepal,petal,kind\n" + "".join(f"{i % 7},{i * 0.5},{'ab'[i % 2]}\n" for i in range(30))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp_path = tmp_path_factory.mktemp("dashboard")
    running = start_service(tmp_path, database_url=None, broker_url=None, auth_mode="keys")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keys(service: Service) -> dict[str, str]:
    return {owner: service.create_key(owner) for owner in ("alice", "bob")}


def _api(service: Service, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{service.base_url}/api/v1",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


@pytest.fixture(scope="module")
def jobs(service: Service, keys: dict[str, str]) -> dict[str, str]:
    """Two of alice's jobs, submitted (not awaited) and an uploaded dataset."""
    with _api(service, keys["alice"]) as api:
        first = api.post("/jobs", json=SPEC).json()["id"]
        second = api.post(
            "/jobs",
            json={**SPEC, "name": "iris-small", "search": {**SPEC["search"], "max_trials": 3}},
        ).json()["id"]
        upload = api.post(
            "/datasets", files={"file": ("toy.csv", CSV.encode())}, data={"target": "kind"}
        )
    assert upload.status_code == 201, upload.text
    return {"first": first, "second": second, "dataset": upload.json()["id"]}


def _wait_done(service: Service, key: str, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with _api(service, key) as api:
        while time.monotonic() < deadline:
            job = api.get(f"/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(1)
    raise TimeoutError(f"job {job_id} still running")


@contextmanager
def _worker_paused_after_a_trial(service: Service, key: str, job_id: str) -> Iterator[None]:
    """Stop the worker (its whole process group) as soon as one of the job's trials has
    completed, and let it go on when leaving."""
    deadline = time.monotonic() + 120
    with _api(service, key) as api:
        while api.get(f"/jobs/{job_id}").json()["trials_completed"] < 1:
            assert time.monotonic() < deadline, "no trial completed in 120 s"
            time.sleep(0.05)
    group = service.processes["worker"].pid  # started in a session of its own
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


def _sign_in(page: Any, base: str, key: str, next_path: str = "/") -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("input[name=key]", key)
    page.click("form[action='/login'] button")
    page.wait_for_load_state()


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    keep = os.environ.get("HPSEARCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(keep) / f"{name}.png"), full_page=True)


def _drawn(page: Any, selector: str) -> dict[str, Any]:
    """What the chart in ``selector`` holds: items per series, and SVG shapes drawn."""
    return page.eval_on_selector(
        selector,
        """el => ({
            series: echarts.getInstanceByDom(el).getOption().series.map(s => (s.data || []).length),
            shapes: el.querySelectorAll('svg path, svg rect, svg polyline').length,
        })""",
    )


class Watched:
    """A page plus every console error and page error it met."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def test_signing_in_is_required_and_another_owner_sees_nothing(
    service: Service, keys: dict[str, str], jobs: dict[str, str], tmp_path: Path
) -> None:
    base = service.base_url
    assert httpx.get(f"{base}/ui/data/jobs/{jobs['first']}", timeout=30).status_code == 401
    with offline_page(base) as browser:
        watched = Watched(browser.page)
        browser.page.goto(f"{base}/jobs/{jobs['first']}")
        assert "/login?next=/jobs/" in browser.page.url
        _shot(browser.page, tmp_path, "dashboard-sign-in")
        browser.page.fill("input[name=key]", "hps_not_a_key")
        browser.page.click("form[action='/login'] button")
        assert "invalid" in browser.page.inner_text(".error").lower()
        _sign_in(browser.page, base, keys["bob"])
        assert jobs["first"] not in browser.page.content()
        response = browser.page.goto(f"{base}/jobs/{jobs['first']}")
        assert response.status == 404
        text = browser.page.inner_text("main")
        assert "not found" in text and "iris-dashboard" not in text
        assert browser.page.goto(f"{base}/datasets/{jobs['dataset']}").status == 404
    assert browser.refused == []
    # the refused key (401) and the other owner's pages (404) were asked for: nothing else
    assert [e for e in watched.errors if not re.search(r"status of (401|404)", e)] == []


def test_a_running_job_updates_live_and_every_plot_is_drawn(
    service: Service, keys: dict[str, str], jobs: dict[str, str], tmp_path: Path
) -> None:
    base = service.base_url
    with offline_page(base) as browser:
        page = browser.page
        watched = Watched(page)
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        # A job of its own, its worker stopped once a trial has ended: the job is still running
        # when the page opens, however fast its trials are, and more trials end after
        with _api(service, keys["alice"]) as api:
            job_id = api.post("/jobs", json={**SPEC, "name": "iris-live"}).json()["id"]
        with _worker_paused_after_a_trial(service, keys["alice"], job_id):
            _sign_in(page, base, keys["alice"], f"/jobs/{job_id}")
            page.wait_for_selector("#chart-history[data-points]", timeout=60_000)
            page.evaluate("window.notReloaded = true")
            seen = _drawn(page, "#chart-history")["series"][0]
            assert seen < SPEC["search"]["max_trials"]
        # a trial ending shows up on the page without any reload
        page.wait_for_function(
            """n => echarts.getInstanceByDom(document.querySelector('#chart-history'))
                   .getOption().series[0].data.length > n""",
            arg=seen,
            timeout=240_000,
            polling=200,
        )
        assert page.evaluate("window.notReloaded") is True
        # pushed over the page's one stream, not polled
        assert any(f"/ui/data/jobs/{job_id}/stream?since=" in url for url in asked)
        assert not [url for url in asked if url.endswith("/version")]
        job = _wait_done(service, keys["alice"], job_id)
        assert job["status"] == "succeeded", job
        page.wait_for_function(
            "() => document.querySelector('#job-state').innerText.includes('succeeded')",
            timeout=30_000,
        )
        assert page.evaluate("window.notReloaded") is True
        with _api(service, keys["alice"]) as api:
            trials = api.get(f"/jobs/{job_id}/trials", params={"limit": 100}).json()["items"]
        completed = [t for t in trials if t["status"] == "completed"]
        varying = {
            name
            for name in {n for t in trials for n in t["hyperparameters"]}
            if len({repr(t["hyperparameters"].get(name)) for t in trials}) > 1
        }
        page.wait_for_selector("#chart-importance[data-points]", timeout=60_000)
        page.wait_for_function(
            "n => document.querySelectorAll('#leaderboard tbody tr').length === n",
            arg=len(trials),
        )

        history = _drawn(page, "#chart-history")
        assert history["series"] == [len(completed), len(completed)]
        assert history["shapes"] >= len(completed)
        assert _drawn(page, "#chart-history-time")["series"][0] == len(completed)
        parallel = _drawn(page, "#chart-parallel")
        assert parallel["series"] == [len(completed)] and parallel["shapes"] >= len(completed)
        timeline = _drawn(page, "#chart-timeline")
        assert sum(timeline["series"]) == 2 * len(trials)  # a proposal and a run per trial
        assert timeline["shapes"] >= len(trials)
        importance = _drawn(page, "#chart-importance")
        assert 1 <= importance["series"][0] <= len(varying)
        # the job's training health: every trial that trained was judged
        judged = [t for t in trials if t.get("health")]
        assert judged and page.is_visible("#health-card")
        assert page.inner_text("#health-counts").startswith(f"{len(judged)} trials judged")
        health_cells = page.locator("#leaderboard tbody tr td:nth-child(7)").all_inner_texts()
        assert sum(bool(cell.strip()) for cell in health_cells) == len(judged)
        curves = _drawn(page, "#chart-curves")
        assert len(curves["series"]) == 2 * min(5, len(completed))  # training and validation
        assert all(n == 3 for n in curves["series"])  # 3 epochs each
        page.locator("#slices").scroll_into_view_if_needed()
        page.wait_for_function(
            "n => document.querySelectorAll('#slices [data-points]').length === n",
            arg=len(varying),
        )
        for i in range(len(varying)):
            assert _drawn(page, f"#slices > div:nth-child({i + 1})")["series"] == [len(completed)]

        # choosing trials in the leaderboard draws their curves
        page.check("#leaderboard tbody tr:nth-child(2) .pick")
        page.wait_for_function(
            """() => echarts.getInstanceByDom(document.querySelector('#chart-curves'))
                   .getOption().series.length === 2"""
        )
        page.evaluate("window.scrollTo(0, 0)")
        _shot(page, tmp_path, "dashboard-job")
        with page.expect_download() as download:
            page.click("text=Trials as CSV")
        table = Path(download.value.path()).read_text().splitlines()
        assert len(table) == 1 + len(trials) and table[0].startswith("number,status,score")
    assert browser.refused == []
    assert watched.errors == []


def test_the_trial_page_downloads_its_model_and_predicts(
    service: Service, keys: dict[str, str], jobs: dict[str, str], tmp_path: Path
) -> None:
    base, job_id = service.base_url, jobs["first"]
    job = _wait_done(service, keys["alice"], job_id)
    best = job["best_trial_number"]
    with _api(service, keys["alice"]) as api:
        trial = api.get(f"/jobs/{job_id}/trials/{best}").json()
        model = api.get(f"/jobs/{job_id}/model")
    with offline_page(base) as browser:
        page = browser.page
        watched = Watched(page)
        _sign_in(page, base, keys["alice"], f"/jobs/{job_id}/trials/{best}")
        assert page.locator("#hyperparameters tr").count() == len(trial["hyperparameters"])
        assert page.locator("#epochs tbody tr").count() == trial["epochs_run"]
        page.wait_for_selector("#trial-curves [data-points]")
        loss = _drawn(page, "#trial-curves [data-figure=loss]")
        assert loss["series"] == [trial["epochs_run"], trial["epochs_run"]]
        assert '"max_trials": 1' in page.inner_text("#trial-spec")
        # its training health: the verdicts and, per hidden layer, a gradient line
        codes = [v["code"].replace("_", " ") for v in trial["health"]["verdicts"]]
        assert page.inner_text("#health .verdicts").split("\n")[0].startswith(codes[0])
        gradients = _drawn(page, '#health-charts [data-figure="gradient norms"]')
        hidden = len(trial["epochs"][-1]["health"]["layers"])
        assert len(gradients["series"]) == hidden and min(gradients["series"]) >= 1
        with page.expect_download() as download:
            page.click("text=Download model")
        content = Path(download.value.path()).read_bytes()
        assert hashlib.sha256(content).hexdigest() == model.headers["X-Model-SHA256"]
        page.fill("#predict textarea", "[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]")
        page.click("#predict button")
        page.wait_for_selector("#prediction:not([hidden])")
        page.wait_for_function("() => document.querySelector('#prediction').innerText.length > 2")
        shown = page.inner_text("#prediction")
        assert '"predictions"' in shown and f'"trial_number": {best}' in shown, shown
        _shot(page, tmp_path, "dashboard-trial")
    assert browser.refused == [] and watched.errors == []


def test_jobs_list_compare_and_dataset_pages(
    service: Service, keys: dict[str, str], jobs: dict[str, str], tmp_path: Path
) -> None:
    base = service.base_url
    for job_id in (jobs["first"], jobs["second"]):
        _wait_done(service, keys["alice"], job_id)
    with offline_page(base) as browser:
        page = browser.page
        watched = Watched(page)
        _sign_in(page, base, keys["alice"])
        page.wait_for_selector(f"tr[data-job='{jobs['second']}']")
        _shot(page, tmp_path, "dashboard-jobs")
        for job_id in (jobs["first"], jobs["second"]):
            page.check(f"tr[data-job='{job_id}'] .pick")
        page.click("#compare")
        page.wait_for_selector("[data-figure=edf][data-points]")
        assert len(_drawn(page, "[data-figure=history]")["series"]) == 2
        assert len(_drawn(page, "[data-figure=edf]")["series"]) == 2
        _shot(page, tmp_path, "dashboard-compare")
        page.goto(f"{base}/datasets/{jobs['dataset']}")
        assert page.locator("#feature-stats tbody tr").count() == 2
        page.wait_for_selector("[data-figure=target][data-points]")
        assert _drawn(page, "[data-figure=target]")["series"] == [2]  # two classes
        _shot(page, tmp_path, "dashboard-dataset")
    assert browser.refused == [] and watched.errors == []


def test_a_technique_studys_page_draws_its_variants_and_readings(
    service: Service, keys: dict[str, str], tmp_path: Path
) -> None:
    base = service.base_url
    study = {
        "name": "iris-study",
        "dataset": {"name": "iris"},
        "model": {"depth": 1, "units": 8, "kernel_initializer": "he_normal"},
        "optimizer": {"learning_rate": 0.01},
        "training": {"epochs": 3, "batch_size": 16},
        "study": {"variants": {"he_normal": {}, "zeros <b>": {"model": {
            "kernel_initializer": "zeros"}}}, "seeds": 2},
    }  # fmt: skip
    with _api(service, keys["alice"]) as api:
        refused = api.post("/jobs", json=study)
        assert refused.status_code == 422 and "variant name" in refused.text  # no markup
        study["study"]["variants"]["zeros"] = study["study"]["variants"].pop("zeros <b>")
        job_id = api.post("/jobs", json=study).json()["id"]
    assert _wait_done(service, keys["alice"], job_id)["status"] == "succeeded"
    with offline_page(base) as browser:
        page = browser.page
        watched = Watched(page)
        _sign_in(page, base, keys["alice"], f"/jobs/{job_id}")
        page.wait_for_selector("#chart-study[data-points]")
        assert _drawn(page, "#chart-study")["series"] == [2, 2]  # means, intervals
        assert _drawn(page, "#chart-study-curves")["series"] == [3, 3]  # epochs per variant
        assert page.locator("#study-table tbody tr").count() == 2
        reading = page.locator("#study-reading li").all_inner_texts()
        assert len(reading) == 1 and reading[0].startswith("zeros: -")
        _shot(page, tmp_path, "dashboard-study-e2e")
    assert browser.refused == [] and watched.errors == []
