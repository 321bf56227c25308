"""Per-feature statistics and a regression target's histogram in an upload's summary, checked
against pandas and numpy computed independently, and computed from the stored arrays for an
upload older than them."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.errors import ConflictError, NotFoundError
from api.services.datasets import dataset_summary_with_stats
from api.uploads.stats import MAX_FEATURE_STATS, STAT_KEYS, dataset_statistics
from db.engine import session_scope
from db.models import OPEN_MODE_OWNER, UploadedDataset
from db.settings import Settings
from tests.api.test_datasets import CSV, FEATURES, _created, _npz

STAT_FIELDS = {"name", "min", "max", "mean", "std"}


def _expected_features() -> pd.DataFrame:
    """test_datasets.CSV encoded by hand: rows without a label dropped, numbers imputed with
    their median, color one-hot with its own <missing> category."""
    frame = pd.read_csv(io.StringIO(CSV.decode())).dropna(subset=["label"])
    color = frame["color"].fillna("<missing>")
    encoded = pd.DataFrame(
        {
            "age": frame["age"].fillna(frame["age"].median()),
            **{f"color={c}": (color == c).astype(float) for c in sorted(set(color))},
            "score": frame["score"].fillna(frame["score"].median()),
        }
    )
    return encoded.astype(np.float64)


def _check_against(stats: list[dict[str, Any]], frame: pd.DataFrame) -> None:
    assert [s["name"] for s in stats] == list(frame.columns)
    for entry in stats:
        assert set(entry) == STAT_FIELDS
        column = frame[entry["name"]]
        assert entry["min"] == pytest.approx(column.min(), rel=1e-6), entry
        assert entry["max"] == pytest.approx(column.max(), rel=1e-6), entry
        assert entry["mean"] == pytest.approx(column.mean(), rel=1e-6), entry
        assert entry["std"] == pytest.approx(column.std(ddof=0), rel=1e-6, abs=1e-9), entry


def test_csv_feature_stats_match_pandas(client: TestClient) -> None:
    summary = _created(client, CSV, "people.csv", target="label")["summary"]
    expected = _expected_features()
    assert list(expected.columns) == FEATURES
    _check_against(summary["feature_stats"], expected)
    assert summary["feature_stats_truncated"] is False
    assert summary["target_histogram"] is None  # classes: no histogram
    age = next(s for s in summary["feature_stats"] if s["name"] == "age")
    assert (age["min"], age["max"]) == (10.0, 100.0)


def test_regression_target_histogram(client: TestClient) -> None:
    rng = np.random.default_rng(3)
    rows = 57
    # quarters: exact in float32, so the stored target is the file's
    target = rng.integers(-40, 400, size=rows) / 4
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.uniform(5, 9, size=rows)})
    text = frame.assign(y=target).to_csv(index=False).encode()
    body = _created(client, text, "reg.csv", target="y")
    assert body["task"] == "regression"
    histogram = body["summary"]["target_histogram"]
    counts, edges = np.histogram(target, bins=20)
    assert len(histogram["edges"]) == 21 and len(histogram["counts"]) == 20
    assert sum(histogram["counts"]) == rows == body["rows"]
    assert histogram["counts"] == counts.tolist()
    assert histogram["edges"] == pytest.approx(edges.tolist())
    assert (histogram["edges"][0], histogram["edges"][-1]) == (target.min(), target.max())
    _check_against(body["summary"]["feature_stats"], frame.astype(np.float32).astype(np.float64))


def test_npz_features_are_flattened_and_capped(client: TestClient) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(loc=3.0, scale=2.0, size=(30, 15, 15))  # 225 features
    body = _created(client, _npz(x=x, y=np.arange(30) % 3), "images.npz")
    summary = body["summary"]
    assert summary["feature_stats_truncated"] is True
    assert len(summary["feature_stats"]) == MAX_FEATURE_STATS < body["n_features"]
    flat = x.reshape(30, -1)[:, :MAX_FEATURE_STATS].astype(np.float32).astype(np.float64)
    expected = pd.DataFrame(flat, columns=[f"x{i}" for i in range(MAX_FEATURE_STATS)])
    _check_against(summary["feature_stats"], expected)
    small = _created(client, _npz(x=x[:, :2, :3], y=np.linspace(0, 1, 30)), "small.npz")
    assert small["summary"]["feature_stats_truncated"] is False
    assert [s["name"] for s in small["summary"]["feature_stats"]] == [f"x{i}" for i in range(6)]
    assert sum(small["summary"]["target_histogram"]["counts"]) == 30


def test_statistics_are_plain_json_whatever_the_arrays_hold() -> None:
    x = np.array([[1.0, np.nan, 2.0], [3.0, np.nan, np.inf], [5.0, np.nan, -np.inf]])
    stats = dataset_statistics(x, np.array([0.5, np.nan, np.inf]), ["a", "b", "c"], None)
    first, missing, infinite = stats["feature_stats"]
    assert first == {"name": "a", "min": 1.0, "max": 5.0, "mean": 3.0, "std": np.std([1, 3, 5])}
    assert missing == {"name": "b", "min": None, "max": None, "mean": None, "std": None}
    assert infinite["mean"] == infinite["min"] == 2.0  # infinities ignored
    assert sum(stats["target_histogram"]["counts"]) == 1
    json.dumps(stats, allow_nan=False)
    empty = dataset_statistics(np.zeros((0, 2)), np.zeros(0), None, None)
    assert empty["target_histogram"] is None and empty["feature_stats"][0]["min"] is None
    json.dumps(empty, allow_nan=False)


def _strip_stats(dataset_id: str) -> dict[str, Any]:
    """Make the row look like an upload from before the statistics; its stored summary."""
    with session_scope() as session:
        row = session.get_one(UploadedDataset, dataset_id)
        row.summary = {k: v for k, v in row.summary.items() if k not in STAT_KEYS}
        return dict(row.summary)


def test_an_older_upload_gets_its_stats_from_the_stored_arrays(client: TestClient) -> None:
    settings = Settings(migrate_on_start=False)
    for content, filename, form in [
        (CSV, "people.csv", {"target": "label"}),
        (_npz(x=np.arange(60.0).reshape(12, 5), y=np.linspace(-1, 1, 12)), "r.npz", {}),
    ]:
        body = _created(client, content, filename, **form)
        computed_at_upload = {key: body["summary"][key] for key in STAT_KEYS}
        old = _strip_stats(body["id"])
        assert client.get(f"/api/v1/datasets/{body['id']}").json()["summary"] == old
        summary = dataset_summary_with_stats(settings, OPEN_MODE_OWNER, body["id"])
        assert summary == {**old, **computed_at_upload}
        ref = f"upload:{body['id']}"
        assert dataset_summary_with_stats(settings, OPEN_MODE_OWNER, ref) == summary
        with pytest.raises(NotFoundError):
            dataset_summary_with_stats(settings, "someone-else", body["id"])

    # stats already stored: returned as they are, the arrays left alone
    with session_scope() as session:
        row = session.get_one(UploadedDataset, body["id"])
        marked = {"feature_stats": [], "feature_stats_truncated": False, "target_histogram": None}
        row.summary = {**row.summary, **marked}
        row.content = b"not an npz"
    stored = dataset_summary_with_stats(settings, OPEN_MODE_OWNER, body["id"])
    assert stored["feature_stats"] == [] and stored["target_histogram"] is None
    _strip_stats(body["id"])
    with pytest.raises(ConflictError, match="cannot be read"):
        dataset_summary_with_stats(settings, OPEN_MODE_OWNER, body["id"])
    assert dataset_summary_with_stats(settings, OPEN_MODE_OWNER, "iris") is None
    with pytest.raises(NotFoundError):
        dataset_summary_with_stats(settings, OPEN_MODE_OWNER, "0" * 32)
