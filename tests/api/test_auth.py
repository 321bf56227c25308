"""API keys and owners: every route but the public ones needs a key, and one owner's jobs,
trials, models and datasets are invisible (404, absent from lists) to every other owner."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from db.engine import session_scope
from db.models import ApiKey, JobStatus
from db.repositories import jobs, owners
from tests.api.conftest import ClientFactory
from tests.api.helpers import SPEC, insert_artifact, insert_job, insert_trial

API = "/api/v1"
CSV = b"a,b,label\n" + b"".join(
    b"%d,%d,%s\n" % (i, i * i, b"xy"[i % 2 : i % 2 + 1]) for i in range(20)
)

#: every route of the API and an example request body (json or multipart) for it. A route
#: added to the app without a row here fails ``test_every_route_is_in_the_table``.
ROUTES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/jobs"): {},
    ("POST", "/jobs"): {"json": SPEC},
    ("GET", "/jobs/{job_id}"): {},
    ("DELETE", "/jobs/{job_id}"): {},
    ("POST", "/jobs/{job_id}/cancel"): {},
    ("GET", "/jobs/{job_id}/trials"): {},
    ("GET", "/jobs/{job_id}/trials.csv"): {},
    ("GET", "/jobs/{job_id}/trials/{number}"): {},
    ("GET", "/jobs/{job_id}/trials/{number}/spec"): {},
    ("GET", "/jobs/{job_id}/split"): {},
    ("GET", "/jobs/{job_id}/health"): {},
    ("GET", "/jobs/{job_id}/study"): {},
    ("GET", "/jobs/{job_id}/model"): {},
    ("POST", "/jobs/{job_id}/predict"): {"json": {"rows": [[1, 2, 3, 4]]}},
    ("GET", "/datasets"): {},
    ("POST", "/datasets"): {"files": {"file": ("d.csv", CSV)}, "data": {"target": "label"}},
    ("GET", "/datasets/{dataset_id}"): {},
    ("DELETE", "/datasets/{dataset_id}"): {},
    ("GET", "/me"): {},
    ("GET", "/limits"): {},
}
PUBLIC = {("GET", "/health"), ("GET", "/openapi.json")}


def _key(owner: str) -> str:
    with session_scope() as session:
        return owners.create_key(session, owner).token


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _call(client: TestClient, method: str, path: str, headers: dict[str, str], **ids: Any) -> Any:
    return client.request(
        method, API + path.format(**ids), headers=headers, **ROUTES.get((method, path), {})
    )


@pytest.fixture
def keyed(sqlite_url: str, make_client: ClientFactory) -> TestClient:
    return make_client(auth_mode="keys")


def test_every_route_is_in_the_table(keyed: TestClient) -> None:
    paths = keyed.get(f"{API}/openapi.json").json()["paths"]
    routes = {
        (method.upper(), path.removeprefix(API))
        for path, operations in paths.items()
        for method in operations
    }
    routes.add(("GET", "/openapi.json"))
    assert routes == set(ROUTES) | PUBLIC


def test_every_route_but_the_public_ones_needs_a_valid_key(keyed: TestClient) -> None:
    revoked = _key("mallory")
    with session_scope() as session:
        assert owners.revoke_key(session, revoked.split("_")[1])
    well_formed_unknown = "hps_" + "0" * 12 + "_" + "A" * 43
    ids = {"job_id": "0" * 32, "number": 0, "dataset_id": "0" * 32}
    bad_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Basic {revoked}"},
        {"Authorization": "Bearer " + "x" * 10_000},
        _auth(well_formed_unknown),
        _auth(revoked),
        _auth(revoked[:-1] + ("A" if revoked[-1] != "A" else "B")),
    ]
    for method, path in ROUTES:
        for headers in bad_headers:
            response = _call(keyed, method, path, headers, **ids)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"] == "unauthorized"
            assert response.json()["detail"]
            assert response.headers["www-authenticate"] == "Bearer"
    for method, path in PUBLIC:
        assert keyed.request(method, API + path).status_code in (200, 503)


def test_keys_are_stored_hashed(keyed: TestClient) -> None:
    token = _key("alice")
    key_id, secret = token.split("_", 2)[1:]
    with session_scope() as session:
        row = session.scalars(select(ApiKey)).one()
    assert (row.id, row.owner) == (key_id, "alice")
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(row.__dict__)
    me = keyed.get(f"{API}/me", headers=_auth(token)).json()
    assert (me["owner"], me["key_id"], me["auth_mode"]) == ("alice", key_id, "keys")


def test_another_owners_things_are_not_found_on_every_route(keyed: TestClient) -> None:
    alice, bob = _auth(_key("alice")), _auth(_key("bob"))
    job_id = insert_job(owner="alice", status=JobStatus.SUCCEEDED)
    insert_trial(job_id, 0, epochs=2)
    insert_artifact(job_id, 0, b"not really keras", {"task": "binary", "input_shape": [4]})
    rows = jobs.SplitRows(3, np.array([2, 0], "<i4").tobytes(), np.array([1], "<i4").tobytes())
    jobs.record_dataset_info(job_id, {"rows_total": 3}, rows)
    upload = keyed.post(f"{API}/datasets", headers=alice, **ROUTES[("POST", "/datasets")])
    assert upload.status_code == 201, upload.text
    ids = {"job_id": job_id, "number": 0, "dataset_id": upload.json()["id"]}

    for method, path in ROUTES:
        if "{" not in path:
            continue
        response = _call(keyed, method, path, bob, **ids)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "not_found"
    # bob's deletes changed nothing: alice still reads everything of hers
    for method, path in ROUTES:
        if "{" in path and method == "GET":
            response = _call(keyed, method, path, alice, **ids)
            expected = 409 if path.endswith("/study") else 200  # hers, but a search
            assert response.status_code == expected, (method, path, response.text)

    assert keyed.get(f"{API}/jobs", headers=bob).json()["total"] == 0
    assert keyed.get(f"{API}/jobs", headers=alice).json()["total"] == 1
    bobs = keyed.get(f"{API}/datasets", headers=bob).json()["items"]
    alices = keyed.get(f"{API}/datasets", headers=alice).json()["items"]
    assert not [d for d in bobs if d["kind"] == "upload"]
    assert [d["id"] for d in alices if d["kind"] == "upload"] == [ids["dataset_id"]]

    # a spec naming alice's upload is refused for bob as if it did not exist
    spec = {**SPEC, "dataset": {"name": f"upload:{ids['dataset_id']}"}}
    response = keyed.post(f"{API}/jobs", json=spec, headers=bob)
    assert response.status_code == 422
    assert "no uploaded dataset" in response.json()["detail"][0]["message"]
    assert keyed.post(f"{API}/jobs", json=spec, headers=alice).status_code == 202


def test_owner_and_status_cannot_be_set_by_a_client(keyed: TestClient) -> None:
    alice = _auth(_key("alice"))
    for field, value in [("owner", "bob"), ("status", "succeeded"), ("id", "0" * 32)]:
        response = keyed.post(f"{API}/jobs", json={**SPEC, field: value}, headers=alice)
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == field
    response = keyed.post(
        f"{API}/datasets",
        headers=alice,
        files={"file": ("d.csv", CSV)},
        data={"target": "label", "owner": "bob", "id": "0" * 32},
    )
    assert response.status_code == 201
    assert response.json()["owner"] == "alice"
    assert response.json()["id"] != "0" * 32


def test_open_mode_is_explicit_and_needs_no_key(
    sqlite_url: str, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="api.auth"):
        client = make_client()
    assert any("OPEN MODE" in r.getMessage() for r in caplog.records)
    me = client.get(f"{API}/me", headers={"Authorization": "Bearer ignored"}).json()
    assert (me["owner"], me["key_id"], me["auth_mode"]) == ("local", None, "open")
    assert client.post(f"{API}/jobs", json=SPEC).status_code == 202
    assert client.get(f"{API}/jobs").json()["items"][0]["owner"] == "local"


def test_invalid_owner_names_are_refused() -> None:
    for name in ["", "../etc", "/abs", "a\x00b", "a b", "x" * 65, "-lead"]:
        with pytest.raises(owners.InvalidOwnerName):
            owners.check_owner_name(name)
    assert owners.check_owner_name("alice@example.org") == "alice@example.org"
