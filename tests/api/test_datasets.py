"""Uploaded datasets over HTTP: formats, task inference, the normalisation rule, malformed and
hostile files (never unpickled), size/row/column limits, list/get/delete, jobs that use one."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory

API = "/api/v1"

CSV = b"""age,color,score,label
30,red,1.5,yes
,blue,2.5,no
50,,3.5,yes
60,red,,
70,red,5.5,no
20,blue,6.5,yes
40,red,7.5,no
10,blue,8.5,yes
80,red,9.5,no
90,red,10.5,yes
100,green,11.5,no
"""
FEATURES = ["age", "color=<missing>", "color=blue", "color=green", "color=red", "score"]


def _upload(client: TestClient, content: bytes, filename: str, **form: Any) -> Any:
    return client.post(
        f"{API}/datasets",
        files={"file": (filename, content)},
        data={k: str(v) for k, v in form.items()},
    )


def _created(client: TestClient, content: bytes, filename: str, **form: Any) -> dict[str, Any]:
    response = _upload(client, content, filename, **form)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{API}/datasets/{body['id']}"
    return body


def _problem(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    (problem,) = body["detail"]
    assert set(problem) == {"field", "message", "limit", "type"}
    return problem


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
    return buf.getvalue()


def test_csv_with_categoricals_and_missing_values(client: TestClient) -> None:
    body = _created(client, CSV, "people.csv", name="people", target="label")
    assert body["kind"] == "upload" and body["ref"] == f"upload:{body['id']}"
    assert (body["name"], body["format"], body["task"]) == ("people", "csv", "binary")
    assert body["input_shape"] == [6] and body["n_features"] == 6 and body["n_classes"] == 2
    assert body["class_labels"] == ["no", "yes"]
    # numeric columns as they are; color one-hot (sorted, missing its own category)
    assert body["feature_names"] == FEATURES
    summary = body["summary"]
    assert summary["rows"] == body["rows"] == 10  # the row without a label is dropped
    assert summary["source_rows"] == 11 and summary["rows_dropped_missing_target"] == 1
    assert summary["missing_values"] == {"age": 1, "color": 1, "score": 1, "label": 1}
    assert summary["missing_total"] == 4
    # medians over the kept rows: age of 30,50,70,20,40,10,80,90,100 -> 50
    assert summary["imputed_medians"] == {"age": 50.0}
    assert summary["categorical_columns"] == {"color": ["<missing>", "blue", "green", "red"]}
    assert summary["class_balance"] == {"no": 5, "yes": 5}
    assert summary["inferred_task"] == summary["task"] == "binary"
    assert summary["target_stats"] is None
    assert body["size_bytes"] == len(CSV) and len(body["sha256"]) == 64


def test_csv_encoding_is_stored_as_numeric_arrays(client: TestClient) -> None:
    from db.engine import session_scope
    from db.models import UploadedDataset

    body = _created(client, CSV, "people.csv", target="label")
    with session_scope() as session:
        content = session.get_one(UploadedDataset, body["id"]).content
    with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
        x, y = arrays["x"], arrays["y"]
    assert x.dtype == np.float32 and x.shape == (10, 6) and y.dtype == np.int32
    names = body["feature_names"]
    assert names == FEATURES
    row = dict(zip(names, x[1], strict=True))  # ",blue,2.5,no": age imputed with the median
    assert row["age"] == 50.0 and row["color=blue"] == 1.0 and row["color=red"] == 0.0
    assert y[:3].tolist() == [1, 0, 1]
    row = dict(zip(names, x[2], strict=True))  # "50,,3.5,yes": color missing
    assert row["color=<missing>"] == 1.0


@pytest.mark.parametrize(
    ("target", "task", "labels"),
    [
        (np.arange(30) % 3, "multiclass", ["0", "1", "2"]),
        (np.arange(30) % 2, "binary", ["0", "1"]),
        (np.linspace(0, 1, 30), "regression", None),
    ],
)
def test_npz_infers_the_task(
    client: TestClient, target: np.ndarray, task: str, labels: Any
) -> None:
    x = np.random.default_rng(0).normal(size=(30, 2, 3))
    body = _created(client, _npz(x=x, y=target), "data.npz")
    assert (body["format"], body["task"], body["class_labels"]) == ("npz", task, labels)
    assert body["input_shape"] == [2, 3] and body["n_features"] == 6
    if task == "regression":
        stats = body["summary"]["target_stats"]
        assert stats["min"] == 0.0 and stats["max"] == 1.0
        assert body["summary"]["class_balance"] is None
    else:
        assert sum(body["summary"]["class_balance"].values()) == 30


def test_parquet_upload_and_task_override(client: TestClient) -> None:
    frame = pd.DataFrame(
        {
            "x": np.arange(20, dtype=np.float64),
            "flag": [True, False] * 10,
            "kind": pd.Categorical(["a", "b"] * 10),
            "y": [0, 1, 2, 3] * 5,
        }
    )
    body = _created(client, _parquet(frame), "t.parquet", target="y")
    assert body["format"] == "parquet" and body["task"] == "multiclass"
    assert body["feature_names"] == ["x", "flag", "kind=a", "kind=b"]  # booleans are 0/1
    assert body["summary"]["class_balance"] == {"0": 5, "1": 5, "2": 5, "3": 5}
    override = _created(client, _parquet(frame), "t.parquet", target="y", task="regression")
    assert override["task"] == "regression" and override["n_classes"] == 1
    assert override["summary"]["inferred_task"] == "multiclass"
    assert override["summary"]["task"] == "regression"
    problem = _problem(_upload(client, _parquet(frame), "t.parquet", target="y", task="binary"))
    assert problem["field"] == "task" and "exactly 2" in problem["message"]
    text = frame.assign(y=["p", "q", "r", "s"] * 5)
    problem = _problem(_upload(client, _parquet(text), "t.parquet", target="y", task="regression"))
    assert problem["field"] == "task"


def test_form_errors_name_the_field(client: TestClient) -> None:
    assert _problem(_upload(client, CSV, "people.csv"))["field"] == "target"
    problem = _problem(_upload(client, CSV, "people.csv", target="nope"))
    assert problem["field"] == "target" and "label" in problem["message"]
    assert _problem(_upload(client, CSV, "people.txt", target="label"))["field"] == "format"
    assert _created(client, CSV, "people.txt", target="label", format="csv")["format"] == "csv"
    assert (
        _problem(_upload(client, CSV, "people.csv", target="label", task="cats"))["field"] == "task"
    )
    assert _problem(_upload(client, b"", "empty.csv", target="label"))["field"] == "file"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"a,b,label\n1,2,x\n3,4,y\n5,6,7,8\n", ["line 4", "Expected 3 fields"]),
        (b"a,label\n1,x\n\xff\xfe,y\n", ["line 3", "UTF-8"]),
        (b"a,label\n1,x\n2,y\n", ["at least 10"]),
        (b"a,label\n1,x\ninf,y\n" + b"1,x\n" * 10, ["column 'a'", "row 2", "infinite"]),
        (b"a,label\n" + b"1,x\n" * 12, ["1 distinct"]),
        # a numeric target with one value is not a "regression" task: nothing to learn
        (b"a,label\n" + b"1,7\n2,7\n" * 6, ["1 distinct", "at least 2"]),
        (b"a,label\n" + b"1,0.5\n2,0.5\n" * 6, ["1 distinct"]),
    ],
)
def test_malformed_csv_is_a_422_naming_the_problem(
    client: TestClient, content: bytes, words: list[str]
) -> None:
    problem = _problem(_upload(client, content, "bad.csv", target="label"))
    assert problem["field"] in ("file", "target")
    for word in words:
        assert word in problem["message"], problem


class _Evil:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_pickles_and_model_files_are_refused_never_unpickled(
    client: TestClient, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(_Evil(marker))
    keras_like = io.BytesIO()
    with zipfile.ZipFile(keras_like, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    h5 = b"\x89HDF\r\n\x1a\n" + b"\x00" * 64
    object_npz = _npz(x=np.array([_Evil(marker)] * 12, dtype=object), y=np.arange(12))
    cases = [
        (evil, "model.pkl", {}, "format"),
        (evil, "data.csv", {"target": "label"}, "file"),
        (evil, "data.npz", {}, "file"),
        (evil, "data.parquet", {"target": "label"}, "file"),
        (keras_like.getvalue(), "model.keras", {}, "format"),
        (keras_like.getvalue(), "model.keras", {"format": "npz"}, "file"),
        (h5, "model.h5", {"format": "npz"}, "file"),
        (h5, "model.h5", {"format": "parquet", "target": "y"}, "file"),
        (object_npz, "objects.npz", {}, "file"),
    ]
    for content, filename, form, field in cases:
        problem = _problem(_upload(client, content, filename, **form))
        assert problem["field"] == field, (filename, form, problem)
    assert "object" in problem["message"]
    assert not marker.exists()
    assert client.get(f"{API}/datasets").json()["items"][-1]["kind"] == "builtin"


def test_npz_shape_and_dtype_errors(client: TestClient) -> None:
    x = np.zeros((12, 3))
    for arrays, word in [
        ({"x": x}, "no array 'y'"),
        ({"x": x, "y": np.zeros(11)}, "one value per row"),
        ({"x": np.zeros(12), "y": np.zeros(12)}, "one row per sample"),
        ({"x": x.astype(str), "y": np.zeros(12)}, "only numeric"),
        ({"x": x, "y": np.array(["a", "b"] * 6)}, "only numeric"),
    ]:
        assert word in _problem(_upload(client, _npz(**arrays), "d.npz"))["message"]


def test_oversized_upload_is_413_and_the_json_limit_stays(
    make_client: ClientFactory, sqlite_url: str
) -> None:
    client = make_client(max_upload_bytes=4096, max_request_bytes=1024)
    big = b"a,label\n" + b"1,x\n2,y\n" * 600
    response = _upload(client, big, "big.csv", target="label")
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert "4096" in response.json()["detail"]
    # over max_request_bytes but under the upload limit: accepted
    assert (
        _upload(client, b"a,label\n" + b"1,x\n2,y\n" * 100, "ok.csv", target="label").status_code
        == 201
    )

    # a chunked body (no Content-Length) is cut off while it streams in
    boundary = "xyzzy"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    ).encode()

    def chunks() -> Any:
        yield head
        for _ in range(20):
            yield b"1,x\n" * 100

    response = client.post(
        f"{API}/datasets",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413


def test_row_and_column_limits(make_client: ClientFactory, sqlite_url: str) -> None:
    client = make_client(max_upload_rows=20, max_upload_columns=4)
    rows = b"a,label\n" + b"1,x\n2,y\n" * 11
    problem = _problem(_upload(client, rows, "r.csv", target="label"))
    assert (problem["type"], problem["limit"]) == ("too_many_rows", 20)
    wide = b"a,b,c,d,label\n" + b"1,2,3,4,x\n5,6,7,8,y\n" * 6
    problem = _problem(_upload(client, wide, "w.csv", target="label"))
    assert (problem["type"], problem["limit"]) == ("too_many_columns", 4)
    # one-hot features count too
    cats = b"a,label\n" + b"".join(f"v{i},{'xy'[i % 2]}\n".encode() for i in range(12))
    assert _problem(_upload(client, cats, "c.csv", target="label"))["type"] == "too_many_columns"
    problem = _problem(_upload(client, _npz(x=np.zeros((21, 2)), y=np.zeros(21)), "n.npz"))
    assert problem["type"] == "too_many_rows"
    frame = pd.DataFrame({"a": range(21), "y": [0, 1] * 10 + [0]})
    assert (
        _problem(_upload(client, _parquet(frame), "p.parquet", target="y"))["type"]
        == "too_many_rows"
    )


def test_list_get_delete(any_client: TestClient) -> None:
    client = any_client
    first = _created(client, CSV, "people.csv", target="label")
    second = _created(client, _npz(x=np.zeros((12, 2)), y=np.arange(12) % 2), "d.npz", name="zeros")
    listed = client.get(f"{API}/datasets").json()["items"]
    assert {d["kind"] for d in listed} == {"builtin", "upload"}
    assert [d["id"] for d in listed if d["kind"] == "upload"] == [second["id"], first["id"]]
    assert next(d for d in listed if d["name"] == "iris")["ref"] == "iris"
    got = client.get(f"{API}/datasets/{first['id']}").json()
    assert got == first
    assert client.get(f"{API}/datasets/upload:{first['id']}").json() == first
    assert client.get(f"{API}/datasets/iris").json()["summary"] is None
    assert client.get(f"{API}/datasets/{'0' * 32}").status_code == 404
    assert client.get(f"{API}/datasets/not-an-id").status_code == 404
    assert client.delete(f"{API}/datasets/{first['id']}").status_code == 204
    assert client.get(f"{API}/datasets/{first['id']}").status_code == 404
    assert client.delete(f"{API}/datasets/{first['id']}").status_code == 404
    assert client.delete(f"{API}/datasets/iris").status_code == 409
    assert [d["id"] for d in client.get(f"{API}/datasets").json()["items"] if d["id"]] == [
        second["id"]
    ]


def _job(ref: str, **search: Any) -> dict[str, Any]:
    return {
        "dataset": {"name": ref},
        "model": {"units": 8},
        "training": {"epochs": 1},
        "search": search,
    }


def test_jobs_on_uploads_are_validated_and_block_deletion(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    regression = _created(client, _npz(x=rng.normal(size=(20, 3)), y=rng.normal(size=20)), "r.npz")
    ref = regression["ref"]
    problem = _problem(client.post(f"{API}/jobs", json=_job(ref, objective="val_accuracy")))
    assert problem["field"] == "search.objective" and "regression" in problem["message"]
    wide = _created(client, _npz(x=np.zeros((12, 1000)), y=np.arange(12) % 2), "w.npz")
    too_big = {**_job(wide["ref"]), "model": {"layers": [4096] * 4}}
    assert _problem(client.post(f"{API}/jobs", json=too_big))["field"] == "model"
    unknown = _problem(client.post(f"{API}/jobs", json=_job(f"upload:{'0' * 32}")))
    assert unknown["field"] == "dataset.name" and "no uploaded dataset" in unknown["message"]

    submitted = client.post(f"{API}/jobs", json=_job(ref))
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert job["dataset"] == ref and job["objective"] == "val_loss"
    conflict = client.delete(f"{API}/datasets/{regression['id']}")
    assert conflict.status_code == 409 and job_id in conflict.json()["detail"]
    assert client.post(f"{API}/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert client.delete(f"{API}/datasets/{regression['id']}").status_code == 204


def test_a_job_on_an_upload_deleted_after_validation_is_refused(client: TestClient) -> None:
    from api.errors import InputValidationError
    from api.services import jobs as services
    from db.models import OPEN_MODE_OWNER
    from db.settings import Settings

    body = _created(client, CSV, "people.csv", target="label")
    settings = Settings(migrate_on_start=False)
    spec = services.validate_spec(settings, OPEN_MODE_OWNER, _job(body["ref"]))
    assert client.delete(f"{API}/datasets/{body['id']}").status_code == 204
    with pytest.raises(InputValidationError, match="no uploaded dataset"):
        services.submit_job(settings, client.app.state.queue, OPEN_MODE_OWNER, spec)
    assert client.get(f"{API}/jobs").json()["total"] == 0


def test_openapi_documents_the_spec_body_and_the_upload_form(client: TestClient) -> None:
    schema = client.get(f"{API}/openapi.json").json()
    body = schema["paths"][f"{API}/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/JobSpec"}
    assert "DatasetSpec" in schema["components"]["schemas"]
    upload = schema["paths"][f"{API}/datasets"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
