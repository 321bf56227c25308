"""The dashboard over HTTP (the browser tests are tests/e2e/test_dashboard.py): its pages and
live JSON show a job's rows as stored, sign-in and owner isolation hold on every route, plots
hold one item per trial, the version moves when a trial does, and the assets are served by the
service, compressed and cached."""

from __future__ import annotations

import gzip
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.dashboard import live
from api.dashboard.session import COOKIE
from db.engine import session_scope
from db.models import JobStatus, TrialStatus
from db.repositories import owners
from tests.api.conftest import ClientFactory
from tests.api.helpers import insert_artifact, insert_job, insert_trial

START = datetime(2025, 1, 1, tzinfo=UTC)


def _seed_job(trials: int = 8, **job: Any) -> str:
    """A finished job whose trials vary two hyperparameters; trial 5 failed."""
    completed = trials - (trials > 5)
    job_id = insert_job(
        status=JobStatus.SUCCEEDED,
        started_at=START,
        max_trials=trials,
        name="seeded",
        trials_completed=completed,
        **job,
    )
    for n in range(trials):
        failed = n == 5
        insert_trial(
            job_id,
            n,
            status=TrialStatus.FAILED if failed else TrialStatus.COMPLETED,
            score=None if failed else 0.5 + n / 100,
            hyperparameters={"units": [8, 16][n % 2], "learning_rate": 10 ** -(1 + n % 4)},
            failure_reason="ValueError: bad shapes" if failed else None,
            worker=f"host:10:{11 + n % 2}",
            proposed_at=START + timedelta(seconds=n),
            proposal_s=0.01,
            started_at=START + timedelta(seconds=n),
            finished_at=START + timedelta(seconds=n + 1),
            epochs=3,
        )
    return job_id


def _key(owner: str) -> str:
    with session_scope() as session:
        return owners.create_key(session, owner).token


@pytest.fixture
def keyed(sqlite_url: str, make_client: ClientFactory) -> TestClient:
    return make_client(auth_mode="keys")


def test_the_job_page_and_its_data_show_the_stored_trials(any_client: TestClient) -> None:
    client = any_client
    job_id = _seed_job()
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "seeded" in page.text and 'id="chart-history"' in page.text
    data = client.get(f"/ui/data/jobs/{job_id}").json()
    assert data["state"]["done"] == 8 and data["state"]["counts"]["failed"] == 1
    assert data["params"] == ["units", "learning_rate"]
    assert [t["number"] for t in data["trials"]] == list(range(8))
    assert data["trials"][5]["reason"] == "ValueError: bad shapes"
    figures = data["figures"]
    # one point per completed trial, the best so far beside it
    assert [len(s["data"]) for s in figures["history"]["series"]] == [7, 7]
    best = [point[1] for point in figures["history"]["series"][1]["data"]]
    assert best == sorted(best) and best[-1] == pytest.approx(0.57)
    assert len(figures["parallel"]["series"][0]["data"]) == 7
    assert [a["name"] for a in figures["parallel"]["parallelAxis"]] == [
        "units",
        "learning_rate",
        "val_accuracy",
    ]
    assert [s["title"]["text"] for s in figures["slices"]] == ["units", "learning_rate"]
    # four learning rates: categories, in numeric order
    assert figures["slices"][1]["xAxis"]["data"] == ["0.0001", "0.001", "0.01", "0.1"]
    timeline = {s["name"]: len(s["data"]) for s in figures["timeline"]["series"]}
    assert timeline == {"proposed": 8, "completed": 7, "failed": 1}
    assert figures["timeline"]["yAxis"]["data"] == ["proposals", "host 10/11", "host 10/12"]
    assert data["best"] == [7, 6, 4, 3, 2]


def test_importance_ranks_the_hyperparameter_the_score_follows(client: TestClient) -> None:
    job_id = insert_job(status=JobStatus.SUCCEEDED, max_trials=40, trials_completed=40)
    for n in range(40):
        units = [8, 16, 32, 64][n % 4]
        insert_trial(
            job_id,
            n,
            score=units / 100 + (n % 3) / 1000,
            hyperparameters={"units": units, "dropout": (n % 3) / 10},
        )
    found = client.get(f"/ui/data/jobs/{job_id}/importance").json()
    assert list(found["importances"]) == ["units", "dropout"]
    assert found["importances"]["units"] > 0.5
    assert found["figure"]["yAxis"]["data"] == ["dropout", "units"]
    # the page's data carries the same: no viewer needs to ask for it
    assert client.get(f"/ui/data/jobs/{job_id}").json()["importance"] == found


def test_page_data_carries_importance_computed_inline_only_for_small_jobs(
    sqlite_url: str, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.dashboard import views

    # built in this process, where the lowered threshold is seen
    client = make_client(dashboard_build_process=False)

    small = _seed_job(trials=8)  # 7 completed
    assert client.get(f"/ui/data/jobs/{small}").json()["importance"]["trials"] == 7
    monkeypatch.setattr(views, "INLINE_IMPORTANCE_TRIALS", 6)
    big = _seed_job(trials=8)
    assert client.get(f"/ui/data/jobs/{big}").json()["importance"] is None
    asked = client.get(f"/ui/data/jobs/{big}/importance").json()
    assert asked["trials"] == 7
    # computed once by the page's own request, then in the page's data from its next version
    monkeypatch.setattr(live, "VERSION_TTL_S", 0)
    insert_trial(big, 8, status=TrialStatus.RUNNING, score=None)
    assert client.get(f"/ui/data/jobs/{big}").json()["importance"] == asked


def test_importance_says_nothing_under_four_trials(client: TestClient) -> None:
    job_id = _seed_job(trials=3)
    assert client.get(f"/ui/data/jobs/{job_id}/importance").json() == {
        "importances": {},
        "trials": 3,
        "figure": None,
    }


def test_curves_of_chosen_trials_and_their_bounds(any_client: TestClient) -> None:
    client = any_client
    job_id = _seed_job()
    found = client.get(f"/ui/data/jobs/{job_id}/curves", params={"trials": "1,3"}).json()
    assert found["metrics"] == ["loss", "accuracy"]
    assert found["metric"] == "accuracy" and found["trials"] == [1, 3]
    # validation accuracy of each trial (no training accuracy recorded), 3 epochs
    assert [(s["name"], len(s["data"])) for s in found["figure"]["series"]] == [
        ("#1 validation", 3),
        ("#3 validation", 3),
    ]
    loss = client.get(f"/ui/data/jobs/{job_id}/curves?trials=1&metric=loss").json()
    assert [s["name"] for s in loss["figure"]["series"]] == ["#1 train"]
    many = ",".join(str(n) for n in range(21))
    refused = client.get(f"/ui/data/jobs/{job_id}/curves", params={"trials": many})
    assert refused.status_code == 422 and "20" in refused.text
    assert client.get(f"/ui/data/jobs/{job_id}/curves?trials=a").status_code == 422


def test_a_running_trials_curves_follow_its_epochs_while_the_job_version_stands(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.models import Epoch

    job_id = insert_job(status=JobStatus.RUNNING, started_at=START)
    trial_id = insert_trial(job_id, 0, status=TrialStatus.RUNNING, score=None, epochs=2)
    insert_trial(job_id, 1, epochs=2, finished_at=START)
    monkeypatch.setattr(live, "VERSION_TTL_S", 60)  # the job's version stands throughout
    client.get(f"/ui/data/jobs/{job_id}/version")
    curves = lambda n: client.get(f"/ui/data/jobs/{job_id}/curves?trials={n}").json()  # noqa: E731
    points = lambda found: len(found["figure"]["series"][0]["data"])  # noqa: E731
    assert points(curves(0)) == 2 and not curves(0)["ended"]
    assert curves(1)["ended"]  # an ended trial's curves are final: kept for the version
    with session_scope() as session:
        session.add(
            Epoch(
                trial_id=trial_id, execution=0, epoch=2, metrics={"val_accuracy": 0.9}, duration_s=1
            )
        )
    # the running trial's new epoch shows at once, though the job's version has not moved
    assert points(curves(0)) == 3


def test_the_trial_page_shows_epochs_spec_failure_and_model(client: TestClient) -> None:
    job_id = _seed_job()
    insert_artifact(job_id, 7, b"model-bytes", {"task": "classification"})
    page = client.get(f"/jobs/{job_id}/trials/7")
    assert page.status_code == 200
    assert page.text.count("<tr><td>") >= 3  # an epoch table row per epoch
    assert f"/jobs/{job_id}/trials/7/model" in page.text
    assert '"max_trials": 1' in page.text  # the one-trial spec that reproduces it
    table = client.get(f"/jobs/{job_id}/trials.csv")
    assert table.text.splitlines()[0].startswith("number,status,score")
    assert (
        len(table.text.splitlines()) == 9 and "attachment" in table.headers["content-disposition"]
    )
    download = client.get(f"/jobs/{job_id}/trials/7/model")
    assert download.content == b"model-bytes"
    failed = client.get(f"/jobs/{job_id}/trials/5")
    assert "ValueError: bad shapes" in failed.text and "/model" not in failed.text
    assert client.get(f"/jobs/{job_id}/trials/5/model").status_code == 404
    assert client.get(f"/jobs/{job_id}/trials/99").status_code == 404


def test_the_jobs_list_filters_by_status_and_compares(client: TestClient) -> None:
    done, other = _seed_job(), _seed_job()
    running = insert_job(status=JobStatus.RUNNING, name="still running")
    listed = client.get("/").text
    assert all(job in listed for job in (done, other, running))
    only = client.get("/?status=running").text
    assert running in only and done not in only
    rows = client.get("/ui/data/jobs", params={"status": "succeeded"}).json()
    assert rows["total"] == 2 and running not in rows["html"]
    compared = client.get("/compare", params={"jobs": [done, other]})
    assert compared.status_code == 200 and '"edf"' in compared.text
    assert client.get("/compare", params={"jobs": [done]}).status_code == 400
    # a bad query is a page saying what is wrong, not JSON
    bad = client.get("/?status=bogus")
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    assert "status" in bad.text


def test_the_dataset_page_shows_per_feature_statistics(client: TestClient) -> None:
    rows = "a,b,label\n" + "".join(f"{i},{i * i},{'xy'[i % 2]}\n" for i in range(20))
    upload = client.post(
        "/api/v1/datasets", files={"file": ("d.csv", rows.encode())}, data={"target": "label"}
    ).json()
    page = client.get(f"/datasets/{upload['id']}")
    assert page.status_code == 200
    table = page.text.split('id="feature-stats"')[1].split("</table>")[0]
    assert table.count("<tr><td>") == 2 and "<td>361</td>" in table  # b's max
    assert client.get("/datasets/" + "0" * 32).status_code == 404
    builtin = client.get("/datasets/iris")
    assert (
        builtin.status_code == 200 and "150" in builtin.text and "feature-stats" not in builtin.text
    )


def test_keys_mode_sends_a_browser_to_sign_in_and_keeps_its_key_in_a_strict_cookie(
    keyed: TestClient,
) -> None:
    job_id = _seed_job(owner="alice")
    page = keyed.get(f"/jobs/{job_id}?x=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=/jobs/{job_id}%3Fx%3D1"
    assert keyed.get(f"/ui/data/jobs/{job_id}").status_code == 401
    wrong = keyed.post("/login", data={"key": "hps_nope", "next": "/"}, follow_redirects=False)
    assert wrong.status_code == 401 and "invalid" in wrong.text.lower()
    signed = keyed.post(
        "/login", data={"key": _key("alice"), "next": f"/jobs/{job_id}"}, follow_redirects=False
    )
    assert signed.status_code == 303 and signed.headers["location"] == f"/jobs/{job_id}"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert keyed.get(f"/jobs/{job_id}").status_code == 200
    assert keyed.get(f"/ui/data/jobs/{job_id}").json()["state"]["id"] == job_id
    out = keyed.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "\\\\evil"])
def test_sign_in_never_sends_the_browser_to_another_site(keyed: TestClient, target: str) -> None:
    signed = keyed.post(
        "/login", data={"key": _key("alice"), "next": target}, follow_redirects=False
    )
    assert signed.headers["location"] == "/"


#: every dashboard route that shows an owner's data, with the ids it needs.
OWNED_ROUTES = [
    ("GET", "/jobs/{job}"),
    ("GET", "/jobs/{job}/trials/{number}"),
    ("GET", "/jobs/{job}/trials/{number}/model"),
    ("GET", "/jobs/{job}/trials.csv"),
    ("GET", "/compare?jobs={job}&jobs={job2}"),
    ("GET", "/datasets/{dataset}"),
    ("GET", "/ui/data/jobs/{job}"),
    ("GET", "/ui/data/jobs/{job}/version"),
    ("GET", "/ui/data/jobs/{job}/stream"),
    ("GET", "/ui/data/jobs/{job}/trials/{number}/version"),
    ("GET", "/ui/data/jobs/{job}/importance"),
    ("GET", "/ui/data/jobs/{job}/curves?trials=1"),
    ("POST", "/ui/data/jobs/{job}/predict"),
]
#: routes that show no owner's data.
UNOWNED_ROUTES = {("GET", "/"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
                  ("GET", "/ui/data/jobs")}  # fmt: skip


def test_every_dashboard_route_is_in_the_isolation_table(keyed: TestClient) -> None:
    from api.dashboard import data, pages

    listed = {(m, re.sub(r"\{[a-z_]+\}", "{}", p.split("?")[0])) for m, p in OWNED_ROUTES}
    listed |= UNOWNED_ROUTES
    found = {
        (method, re.sub(r"\{[a-z_]+\}", "{}", route.path))  # type: ignore[attr-defined]
        for route in [*pages.router.routes, *data.router.routes]
        for method in route.methods  # type: ignore[attr-defined]
    }
    documented = keyed.get("/openapi.json").json()["paths"]
    assert not [p for p in documented if not p.startswith("/api/v1/")]
    assert found == {(m, re.sub(r"\{[a-z_]+\}", "{}", p)) for m, p in listed}


def test_another_owners_job_and_dataset_are_not_found_on_every_dashboard_route(
    keyed: TestClient,
) -> None:
    alice = {"Authorization": f"Bearer {_key('alice')}"}
    bob = {"Authorization": f"Bearer {_key('bob')}"}
    job, job2 = _seed_job(owner="alice"), _seed_job(owner="alice")
    insert_artifact(job, 1, b"alice-model", {"task": "classification"})
    rows = "a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(10))
    dataset = keyed.post(
        "/api/v1/datasets",
        files={"file": ("d.csv", rows.encode())},
        data={"target": "label"},
        headers=alice,
    ).json()["id"]
    for method, template in OWNED_ROUTES:
        path = template.format(job=job, job2=job2, number=1, dataset=dataset)
        body = {"json": {"rows": [[1, 2, 3, 4]]}} if method == "POST" else {}
        mine = keyed.request(method, path, headers=alice, **body)
        theirs = keyed.request(method, path, headers=bob, **body)
        if "predict" not in path:
            assert mine.status_code == 200, (path, mine.text[:300])
        assert theirs.status_code == 404, (path, theirs.status_code)
        # the 404 may repeat the id asked for, never what the job holds
        assert not {"seeded", "learning_rate", "alice-model"} & set(
            re.findall(r"[\w-]+", theirs.text)
        )
    listed = keyed.get("/", headers=bob).text
    assert job not in listed and "seeded" not in listed


def test_assets_are_served_by_the_service_compressed_and_cached(client: TestClient) -> None:
    page = client.get("/")
    scripts = re.findall(r'src="(/static/ui/[^"]+)"', page.text)
    assert any("echarts" in s for s in client.get(f"/jobs/{_seed_job()}").text.split('"'))
    assert scripts and all(s.startswith("/static/ui/") for s in scripts)
    assert "http://" not in page.text and "https://" not in page.text
    echarts = client.get(
        re.findall(r'src="(/static/ui/echarts[^"]+)"', client.get(f"/jobs/{_seed_job()}").text)[0]
    )
    assert echarts.status_code == 200 and echarts.headers["content-encoding"] == "gzip"
    assert "immutable" in echarts.headers["cache-control"]
    assert b"Apache" in client.get("/static/ui/ECHARTS-LICENSE.txt").content
    again = client.get(echarts.url, headers={"if-none-match": echarts.headers["etag"]})
    assert again.status_code == 304 and not again.content
    for outside in ("..%2Fpages.py", "nope.js", ".hidden", "%2E%2E%2Fviews.py"):
        assert client.get(f"/static/ui/{outside}").status_code == 404, outside
    # the JSON API's bodies are never recompressed here
    raw = client.get("/api/v1/jobs", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in raw.headers
    assert gzip.compress(b"x")  # the client decoded the pages' gzip above


def test_every_template_and_asset_ships_in_the_package() -> None:
    """A non-editable install (the Docker image) gets the files the package data names."""
    import fnmatch
    import tomllib
    from pathlib import Path

    import api

    root = Path(api.__file__).parent
    patterns = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["api"]
    files = [
        p.relative_to(root).as_posix()
        for folder in ("dashboard/templates", "dashboard/static")
        for p in (root / folder).iterdir()
    ]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files)


def test_importance_is_computed_once_however_many_viewers_ask_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from api.dashboard import importance

    calls: list[int] = []

    def slow(trials: Any, maximize: bool) -> dict[str, float]:
        calls.append(len(trials))
        time.sleep(0.3)
        return {"units": 1.0}

    monkeypatch.setattr(importance, "param_importances", slow)
    trials = [({"units": n}, float(n)) for n in range(6)]
    loads: list[int] = []

    def load(count: int) -> Any:
        loads.append(count)
        return trials[:count]

    def ask(count: int, exact: bool = False) -> Any:
        return importance.cached_importances("j" * 32, count, lambda: load(count), True, exact)

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: ask(6), range(8)))
    assert calls == [6] and found == [({"units": 1.0}, 6)] * 8
    # a few more trials of a running job: the last result, trials not even read; an ended
    # job's: computed again
    assert ask(7) == ({"units": 1.0}, 6) and loads == [6]
    assert ask(7, exact=True)[1] == 7
    assert calls == [6, 6] and loads == [6, 7]


def test_training_health_on_the_job_and_trial_pages(client: TestClient) -> None:
    from db.models import Epoch

    job_id = insert_job(status=JobStatus.SUCCEEDED, started_at=START, max_trials=6)
    layers = [
        {"name": "dense_0", "act": "sigmoid", "g": 1e-7, "same": 0.0, "sat": 0.9, "dead": None},
        {"name": "dense_1", "act": "sigmoid", "g": 1e-2, "same": 0.0, "sat": 0.1, "dead": None},
    ]
    vanishing = {
        "code": "vanishing_gradients",
        "evidence": {"ratio": 1e-5, "epoch": 1},
        "remedy": "non-saturating activations",
    }
    for n in range(6):
        sigmoid = n % 2 == 0
        verdict = vanishing if sigmoid else {"code": "healthy", "evidence": {}, "remedy": ""}
        trial_id = insert_trial(
            job_id,
            n,
            hyperparameters={"activation": "sigmoid" if sigmoid else "relu"},
            health={"verdicts": [verdict], "baseline": 0.1},
        )
        with session_scope() as session:
            for epoch in range(2):
                record = {"layers": layers, "out_std": 0.2, "loss": 1.0}
                session.add(
                    Epoch(
                        trial_id=trial_id,
                        execution=0,
                        epoch=epoch,
                        metrics={"loss": 1.0, "val_accuracy": 0.5},
                        duration_s=0.1,
                        health=record,
                    )
                )
    data = client.get(f"/ui/data/jobs/{job_id}").json()
    assert data["health"]["judged"] == 6
    assert data["health"]["counts"] == {"vanishing_gradients": 3, "healthy": 3}
    assert data["health"]["advice"][0].startswith(
        "3 of 3 trials with activation=sigmoid had vanishing gradients"
    )
    assert [t["health"] for t in data["trials"][:2]] == [["vanishing_gradients"], ["healthy"]]
    page = client.get(f"/jobs/{job_id}/trials/0").text
    assert "vanishing gradients" in page and "non-saturating activations" in page
    figures = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S).group(1))
    gradients = figures["gradient norms"]
    assert [s["name"] for s in gradients["series"]] == ["dense_0", "dense_1"]
    assert gradients["yAxis"]["type"] == "log"
    assert [len(s["data"]) for s in gradients["series"]] == [2, 2]
    shares = [s["name"] for s in figures["unit shares"]["series"]]
    assert shares == [
        "dense_0 saturated",
        "dense_0 identical",
        "dense_1 saturated",
        "dense_1 identical",
    ]


def test_the_health_summary_skips_trials_without_verdicts(client: TestClient) -> None:
    from sqlalchemy import text

    job_id = insert_job(status=JobStatus.SUCCEEDED, max_trials=3)
    verdict = {"verdicts": [{"code": "healthy", "evidence": {}, "remedy": ""}], "baseline": 0.5}
    insert_trial(job_id, 0, health=verdict)
    insert_trial(job_id, 1, status=TrialStatus.FAILED, score=None, health=None)
    insert_trial(job_id, 2, status=TrialStatus.CANCELLED, score=None)
    with session_scope() as session:
        stored = session.execute(
            text("SELECT health IS NULL FROM trials WHERE job_id = :job AND number = 1"),
            {"job": job_id},
        ).scalar()
        assert stored in (1, True)  # None is SQL NULL, not the JSON text 'null'
        # a row written as JSON null before that is no verdict either
        session.execute(
            text("UPDATE trials SET health = 'null' WHERE job_id = :job AND number = 2"),
            {"job": job_id},
        )
    summary = client.get(f"/api/v1/jobs/{job_id}/health").json()
    assert summary["judged_trials"] == 1 and summary["verdicts"] == {"healthy": 1}
    assert client.get(f"/api/v1/jobs/{job_id}/trials").status_code == 200
    assert client.get(f"/ui/data/jobs/{job_id}").json()["health"]["judged"] == 1
