"""A small synchronous client of the hpsearch HTTP API (used by the CLI; reusable in scripts).

with ApiClient("http://127.0.0.1:8000") as client:
    job = client.submit(spec)
    client.trials(job["id"])
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


def default_url() -> str:
    """``$HPSEARCH_API_URL`` or the local default."""
    return os.environ.get("HPSEARCH_API_URL") or DEFAULT_URL


def default_api_key() -> str | None:
    """``$HPSEARCH_API_KEY``, if set (not needed by a server in the open mode)."""
    return os.environ.get("HPSEARCH_API_KEY") or None


class ApiError(Exception):
    """A non-2xx answer: its status, error code and detail."""

    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self.body = body
        self.error = body.get("error", "error") if isinstance(body, dict) else "error"
        self.detail = body.get("detail", body) if isinstance(body, dict) else body
        super().__init__(self.describe())

    def describe(self) -> str:
        """A one-paragraph, human-readable message (422s list each field)."""
        if isinstance(self.detail, list):
            lines = []
            for item in self.detail:
                if isinstance(item, dict):
                    limit = f" (limit {item['limit']})" if item.get("limit") is not None else ""
                    lines.append(f"  {item.get('field') or '<body>'}: {item.get('message')}{limit}")
                else:
                    lines.append(f"  {item}")
            return f"HTTP {self.status_code} {self.error}:\n" + "\n".join(lines)
        return f"HTTP {self.status_code} {self.error}: {self.detail}"


#: tries of a GET that meets the key's request rate (each waits its Retry-After).
RATE_LIMIT_RETRIES = 4


def _rate_limited_read(method: str, response: httpx.Response) -> bool:
    if method != "GET" or response.status_code != 429:
        return False
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    return bool(response.json().get("error") == "rate_limited")


class ApiClient:
    """Typed-ish wrappers over the API's endpoints; every method returns the decoded JSON.

    ``http`` may be any ``httpx.Client`` (e.g. FastAPI's ``TestClient``) whose base URL is the
    server root; by default one is created for ``base_url``. ``api_key`` (default
    ``$HPSEARCH_API_KEY``) is sent as a bearer token.
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
        api_key: str | None = None,
    ) -> None:
        self.base_url = (base_url or default_url()).rstrip("/")
        self._owns_http = http is None
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        api_key = api_key or default_api_key()
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    # -- plumbing --------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        for attempt in range(1, RATE_LIMIT_RETRIES + 1):
            response = self.http.request(method, f"{API_PREFIX}{path}", headers=headers, **kwargs)
            if attempt == RATE_LIMIT_RETRIES or not _rate_limited_read(method, response):
                break
            # A read over the key's request rate waits as the server says (Retry-After).
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 60.0))
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise ApiError(response.status_code, body)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    @staticmethod
    def _params(**params: Any) -> dict[str, Any]:
        return {k: v for k, v in params.items() if v is not None}

    # -- endpoints -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health`` (raises ``ApiError`` on 503)."""
        return self._json("GET", "/health")

    def me(self) -> dict[str, Any]:
        """The caller's owner, key and quota usage."""
        return self._json("GET", "/me")

    def datasets(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """A page of datasets: the built-ins, then the caller's uploads."""
        return self._json("GET", "/datasets", params={"limit": limit, "offset": offset})

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        """A built-in by name or an upload by id, with its summary."""
        return self._json("GET", f"/datasets/{dataset_id}")

    def upload_dataset(
        self,
        path: str | Path,
        target: str | None = None,
        name: str | None = None,
        fmt: str | None = None,
        task: str | None = None,
    ) -> dict[str, Any]:
        """Upload a .csv / .npz / .parquet file; returns the stored dataset (its ``ref`` is
        what a spec's ``dataset.name`` is set to)."""
        path = Path(path)
        form = self._params(target=target, name=name, format=fmt, task=task)
        with path.open("rb") as handle:
            return self._json("POST", "/datasets", data=form, files={"file": (path.name, handle)})

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/datasets/{dataset_id}")

    def limits(self) -> dict[str, int]:
        return self._json("GET", "/limits")

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Submit a job spec; returns ``{id, status, warnings, url}``."""
        return self._json("POST", "/jobs", json=spec)

    def jobs(self, status: str | None = None, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """A page of jobs, newest first."""
        return self._json(
            "GET", "/jobs", params=self._params(status=status, limit=limit, offset=offset)
        )

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{job_id}")

    def job_study(self, job_id: str) -> dict[str, Any]:
        """A technique study's table: each variant over its seeds, against the baseline."""
        return self._json("GET", f"/jobs/{job_id}/study")

    def job_health(self, job_id: str) -> dict[str, Any]:
        """The job's training health: verdict counts and the values that go with them."""
        return self._json("GET", f"/jobs/{job_id}/health")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/jobs/{job_id}/cancel")

    def delete_job(self, job_id: str) -> None:
        """Delete an ended job with its trials and models."""
        self._request("DELETE", f"/jobs/{job_id}")

    def trials(
        self,
        job_id: str,
        sort: str = "score",
        order: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of the job's leaderboard."""
        params = self._params(sort=sort, order=order, status=status, limit=limit, offset=offset)
        return self._json("GET", f"/jobs/{job_id}/trials", params=params)

    def trial(self, job_id: str, number: int) -> dict[str, Any]:
        """One trial with its epochs."""
        return self._json("GET", f"/jobs/{job_id}/trials/{number}")

    def download_model(self, job_id: str, path: str | Path, rank: int = 1) -> dict[str, Any]:
        """Save the ``rank``-th best model to ``path``; returns sha256, trial number and size."""
        response = self._request("GET", f"/jobs/{job_id}/model", params={"rank": rank})
        Path(path).write_bytes(response.content)
        return {
            "path": str(path),
            "size_bytes": len(response.content),
            "sha256": response.headers.get("x-model-sha256"),
            "trial_number": int(response.headers.get("x-model-trial-number", -1)),
            "rank": rank,
        }

    def predict(
        self, job_id: str, rows: list[Any], rank: int = 1, mc_samples: int = 0
    ) -> dict[str, Any]:
        """Predictions of a stored model for ``rows``."""
        body = {"rows": rows, "rank": rank, "mc_samples": mc_samples}
        return self._json("POST", f"/jobs/{job_id}/predict", json=body)
