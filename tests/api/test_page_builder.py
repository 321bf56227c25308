"""The dashboard's job pages are built in a spawned process beside the API
(``api.dashboard.page_builder``): the page is the same as built in the API, a dead builder
costs no page, and what it raises comes back as the API's own error."""

from __future__ import annotations

import os
import pickle
import signal

import pytest
from fastapi.testclient import TestClient

from api.dashboard import live, page_builder
from api.errors import NotFoundError
from db.models import TrialStatus
from db.transient import DatabaseUnavailableError
from tests.api.conftest import ClientFactory
from tests.api.helpers import insert_trial
from tests.api.test_dashboard import _seed_job


def _builder_pids() -> list[int]:
    return [p.pid for p in page_builder.BUILDER.child.processes() if p.is_alive()]


def _timeless(page: dict) -> dict:
    """The page without what moves with the clock (the seeded job has no end time)."""
    page["state"].pop("elapsed_s")
    return page


@pytest.fixture(autouse=True)
def _fresh_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "VERSION_TTL_S", 0)


def test_the_page_is_built_in_another_process_and_equals_the_one_built_here(
    database_url: str, make_client: ClientFactory
) -> None:
    job_id = _seed_job(trials=8)
    in_child = make_client().get(f"/ui/data/jobs/{job_id}")
    assert in_child.status_code == 200
    pids = _builder_pids()
    assert pids and os.getpid() not in pids
    live._pages.clear()
    here = make_client(dashboard_build_process=False).get(f"/ui/data/jobs/{job_id}")
    assert _timeless(here.json()) == _timeless(in_child.json())
    assert len(in_child.json()["trials"]) == 8
    importance = make_client().get(f"/ui/data/jobs/{job_id}/importance").json()
    assert importance["trials"] == 7 and set(importance["importances"]) == {
        "units",
        "learning_rate",
    }


def test_a_killed_builder_costs_no_page_and_the_next_build_spawns_another(
    client: TestClient,
) -> None:
    job_id = _seed_job(trials=8)
    assert client.get(f"/ui/data/jobs/{job_id}").status_code == 200
    (first,) = _builder_pids()
    os.kill(first, signal.SIGKILL)

    insert_trial(job_id, 8, status=TrialStatus.COMPLETED, score=0.9)  # a new version
    page = client.get(f"/ui/data/jobs/{job_id}")
    assert page.status_code == 200
    assert len(page.json()["trials"]) == 9

    insert_trial(job_id, 9, status=TrialStatus.COMPLETED, score=0.91)
    assert len(client.get(f"/ui/data/jobs/{job_id}").json()["trials"]) == 10
    (second,) = _builder_pids()
    assert second != first


def test_another_owners_job_is_a_not_found_from_the_builder(client: TestClient) -> None:
    job_id = _seed_job(trials=6)
    settings = client.app.state.settings
    with pytest.raises(NotFoundError, match="not found"):
        page_builder.BUILDER.job_page(settings, "someone-else", job_id, "v")
    assert _builder_pids()  # raised there, and the builder lives on


def test_a_database_outage_crosses_back_from_the_builder_whole() -> None:
    error = DatabaseUnavailableError("read a job's dashboard", 5.2, ConnectionRefusedError("no"))
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is DatabaseUnavailableError
    assert str(back) == str(error) and back.waited_s == 5.2 and back.what == error.what
