"""The dashboard's job pages are built in a spawned process beside the API
(``api.dashboard.page_builder``): the page is the same as built in the API, a builder that died
or hung costs no page and is replaced, what it raises comes back as the API's own error, and it
never outlives the API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient

from api.child_process import exited
from api.dashboard import live, page_builder
from api.dashboard.page_builder import PageBuilder
from api.errors import InputValidationError, NotFoundError, PageBuildTimeoutError
from db.models import TrialStatus
from db.settings import Settings
from db.transient import DatabaseUnavailableError
from tests.api import child_tasks
from tests.api.conftest import ClientFactory
from tests.api.helpers import insert_trial
from tests.api.test_dashboard import _seed_job


def _builder(client: TestClient) -> PageBuilder:
    return client.app.state.page_builder


def _pids(builder: PageBuilder) -> list[int]:
    return [p.pid for p in builder.child.processes() if not exited(p, 0)]


def _timeless(page: dict) -> dict:
    """The page without what moves with the clock (the seeded job has no end time)."""
    page["state"].pop("elapsed_s")
    page.pop("state_html")
    return page


@pytest.fixture(autouse=True)
def _fresh_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "VERSION_TTL_S", 0)


@pytest.fixture
def child_client(sqlite_url: str, make_client: ClientFactory) -> TestClient:
    return make_client(dashboard_build_process=True)


def test_the_page_is_built_in_another_process_and_equals_the_one_built_here(
    database_url: str, make_client: ClientFactory
) -> None:
    job_id = _seed_job(trials=8)
    client = make_client(dashboard_build_process=True)
    in_child = client.get(f"/ui/data/jobs/{job_id}")
    assert in_child.status_code == 200
    pids = _pids(_builder(client))
    assert pids and os.getpid() not in pids
    live._pages.clear()
    here = make_client(dashboard_build_process=False).get(f"/ui/data/jobs/{job_id}")
    assert _timeless(here.json()) == _timeless(in_child.json())
    assert len(in_child.json()["trials"]) == 8
    importance = client.get(f"/ui/data/jobs/{job_id}/importance").json()
    assert importance["trials"] == 7
    assert set(importance["importances"]) == {"units", "learning_rate"}


def test_a_builder_killed_while_idle_is_replaced_at_the_next_page(
    child_client: TestClient,
) -> None:
    job_id = _seed_job(trials=8)
    assert child_client.get(f"/ui/data/jobs/{job_id}").status_code == 200
    (first,) = _builder(child_client).child.processes()
    os.kill(first.pid, signal.SIGKILL)
    assert exited(first, 10)
    time.sleep(0.2)  # the pool notices and marks itself broken

    insert_trial(job_id, 8, status=TrialStatus.COMPLETED, score=0.9)  # a new version
    page = child_client.get(f"/ui/data/jobs/{job_id}")
    assert page.status_code == 200
    assert len(page.json()["trials"]) == 9
    (second,) = _pids(_builder(child_client))
    assert second not in (first.pid, os.getpid())


def test_a_builder_killed_under_a_build_costs_no_page(child_client: TestClient) -> None:
    builder, settings = _builder(child_client), child_client.app.state.settings
    assert builder.run(settings, child_tasks.pid_after, 0) != os.getpid()  # started
    (child,) = builder.child.processes()
    threading.Timer(0.5, os.kill, (child.pid, signal.SIGKILL)).start()
    # the build that was running there is done again here
    assert builder.run(settings, child_tasks.pid_after, 2.0) == os.getpid()
    assert builder.run(settings, child_tasks.pid_after, 0) not in (child.pid, os.getpid())


def test_a_hung_build_times_out_and_its_builder_is_killed(
    sqlite_url: str, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(dashboard_build_process=True, api_db_retry_budget_s=0.5)
    builder, settings = _builder(client), client.app.state.settings
    builder.run(settings, child_tasks.pid_after, 0)  # started (its imports take seconds)
    (hung,) = builder.child.processes()
    monkeypatch.setattr(page_builder, "BUILD_TIMEOUT_S", 0.5)
    started = time.monotonic()
    with pytest.raises(PageBuildTimeoutError, match="longer than 1 s"):
        builder.run(settings, child_tasks.pid_after, 60.0)
    assert time.monotonic() - started < 30
    assert exited(hung, 10)
    monkeypatch.setattr(page_builder, "BUILD_TIMEOUT_S", 60.0)
    assert builder.run(settings, child_tasks.pid_after, 0) not in (hung.pid, os.getpid())


def test_errors_raised_in_the_builder_come_back_as_the_apis_own(
    child_client: TestClient,
) -> None:
    builder, settings = _builder(child_client), child_client.app.state.settings
    job_id = _seed_job(trials=6)
    with pytest.raises(NotFoundError, match="not found"):
        builder.job_page(settings, "someone-else", job_id, "v")
    with pytest.raises(InputValidationError) as invalid:
        builder.run(settings, child_tasks.invalid)
    assert (invalid.value.field, invalid.value.limit, invalid.value.type) == ("rows", 3, "too_long")

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = Settings(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/none",
        api_db_retry_budget_s=0.5,
    )
    with pytest.raises(DatabaseUnavailableError) as down:
        builder.job_page(unreachable, "local", job_id, "v")
    assert down.value.what == "read a job's dashboard" and down.value.waited_s >= 0.4
    assert "unavailable" in str(down.value) and down.value.cause
    assert len(_pids(builder)) == 1  # raised there, and the builder lives on


def test_the_builder_stops_with_the_app_and_with_a_killed_api(child_client: TestClient) -> None:
    builder, settings = _builder(child_client), child_client.app.state.settings
    builder.run(settings, child_tasks.pid_after, 0)
    (child,) = builder.child.processes()
    builder.shutdown()
    assert exited(child, 10)

    # a parent killed outright (no shutdown): its child exits by itself
    script = (
        "from api.child_process import SpawnedChild\n"
        "import os\n"
        "child = SpawnedChild()\n"
        "print(child.call(os.getpid, timeout_s=60), flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    orphan = int(parent.stdout.readline())
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(orphan):
        time.sleep(0.1)
    assert not _alive(orphan)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # an exited child nobody reaped is a zombie
        return stat.read().split(")")[-1].split()[0] != "Z"
