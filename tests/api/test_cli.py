"""The CLI's client commands against an in-process app, and the worker command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from api.cli import common as cli_common
from api.cli import datasets as cli_datasets
from api.cli import keys as cli_keys
from api.cli import main as cli
from api.cli import serve as cli_serve
from api.client import ApiClient, ApiError
from db.models import JobStatus, TrialStatus
from db.settings import get_settings
from search_spaces import limits
from tests.api.conftest import ClientFactory
from tests.api.helpers import SPEC, insert_artifact, insert_job, insert_trial

runner = CliRunner()


def _wire(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(
        cli_common,
        "ApiClient",
        lambda url, api_key=None: ApiClient(url, http=client, api_key=api_key),
    )
    for module in (cli, cli_common, cli_datasets, cli_keys):
        monkeypatch.setattr(module, "console", Console(width=200))
        monkeypatch.setattr(module, "err_console", Console(width=200, stderr=True), raising=False)
    return client


@pytest.fixture
def wired(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """Make the CLI's ApiClient talk to the in-process app."""
    return _wire(client, monkeypatch)


@pytest.fixture
def wired_keys(
    sqlite_url: str, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    """The same, with the app requiring API keys."""
    return _wire(make_client(auth_mode="keys"), monkeypatch)


def _invoke(*args: str) -> Any:
    result = runner.invoke(cli.app, list(args))
    return result


def test_submit_jobs_cancel(wired: TestClient, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**SPEC, "model": {**SPEC["model"], "activation": "selu"}}))
    result = _invoke("submit", str(spec_file))
    assert result.exit_code == 0, result.output
    assert "queued" in result.output
    assert "selu_init" in result.output
    job_id = wired.get("/api/v1/jobs").json()["items"][0]["id"]
    assert job_id in result.output

    result = _invoke("jobs")
    assert result.exit_code == 0, result.output
    assert "api-test" in result.output

    result = _invoke("jobs", "--json")
    assert result.exit_code == 0, result.output
    assert [job["id"] for job in json.loads(result.stdout)] == [job_id]

    result = _invoke("cancel", job_id)
    assert result.exit_code == 0, result.output
    assert "cancelled" in result.output
    result = _invoke("cancel", job_id)
    assert result.exit_code == 1
    assert "409" in result.output


def test_an_unknown_field_names_the_one_probably_meant(wired: TestClient, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**SPEC, "optimizer": {"learnin_rate": 0.01}}))
    result = _invoke("submit", str(spec_file))
    assert result.exit_code == 1
    assert "optimizer.learnin_rate" in result.output
    assert "did you mean 'learning_rate'?" in result.output


def test_a_second_cancel_of_a_running_job_says_it_is_being_cancelled(wired: TestClient) -> None:
    job_id = insert_job(status=JobStatus.RUNNING)
    assert "cancellation requested" in _invoke("cancel", job_id).output
    again = _invoke("cancel", job_id)
    assert again.exit_code == 0 and "already being cancelled" in again.output


def test_a_spec_that_cannot_be_read_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = _invoke("submit", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "cannot read the spec" in missing.output and "Traceback" not in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    usage = _invoke("watch", "--help").output
    assert "Usage: hpsearch watch [OPTIONS] JOB_ID" in usage, usage
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert _invoke("submit", str(broken)).exit_code == 2


def test_invalid_spec_lists_fields(wired: TestClient, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**SPEC, "search": {"max_trials": 9999}}))
    result = _invoke("submit", str(spec_file))
    assert result.exit_code == 1
    assert "search.max_trials" in result.output
    assert f"limit {limits.MAX_TRIALS}" in result.output


def test_watch_trials_and_model(wired: TestClient, tmp_path: Path) -> None:
    job_id = insert_job(
        status=JobStatus.SUCCEEDED,
        max_trials=2,
        trials_completed=1,
        trials_failed=1,
        best_trial_number=0,
        best_score=0.875,
    )
    insert_trial(job_id, 0, score=0.875, hyperparameters={"units": 32}, parameter_count=1234)
    insert_trial(job_id, 1, score=None, status=TrialStatus.FAILED, failure_reason="oom")
    insert_artifact(job_id, 0, b"model-bytes", {"task": "multiclass", "input_shape": [4]})

    result = _invoke("watch", job_id, "--interval", "0.01")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    assert "0.875" in result.output
    assert "units=32" in result.output

    result = _invoke("trials", job_id)
    assert result.exit_code == 0, result.output
    assert "oom" in result.output

    out = tmp_path / "best.keras"
    result = _invoke("model", job_id, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"model-bytes"
    out.write_bytes(b"mine")
    result = _invoke("model", job_id, "-o", str(out))
    assert result.exit_code == 1 and "--force" in result.output
    assert out.read_bytes() == b"mine"
    assert _invoke("model", job_id, "-o", str(out), "--force").exit_code == 0
    assert out.read_bytes() == b"model-bytes"

    result = _invoke("trials", job_id, "--json")
    assert result.exit_code == 0, result.output
    assert [t["number"] for t in json.loads(result.stdout)] == [0, 1]
    result = _invoke("trials", job_id, "--csv")
    assert result.exit_code == 0, result.output
    header, first, *_ = result.stdout.splitlines()
    assert "hp.units" in header.split(",") and first.startswith("0,")
    assert _invoke("trials", job_id, "--csv", "--json").exit_code == 2

    result = _invoke("trials", "nope")
    assert result.exit_code == 1
    assert "not_found" in result.output


def test_keys_whoami_and_datasets(wired_keys: TestClient, tmp_path: Path) -> None:
    created = _invoke("keys", "create", "alice")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("hps_")
    key_id = token.split("_")[1]
    assert _invoke("keys", "create", "../root").exit_code == 1

    refused = _invoke("whoami")
    assert refused.exit_code == 1
    assert "401" in refused.output
    me = _invoke("--api-key", token, "whoami")
    assert me.exit_code == 0, me.output
    assert "owner alice" in me.output

    quota = _invoke("keys", "quota", "alice", "--active-jobs", "2")
    assert quota.exit_code == 0, quota.output
    assert wired_keys.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()[
        "active_jobs"
    ] == {"limit": 2, "used": 0}
    quota = _invoke("keys", "quota", "alice", "--reset", "--stored-bytes", "1000")
    assert quota.exit_code == 0, quota.output
    me = wired_keys.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["active_jobs"]["limit"] == get_settings().quota_active_jobs != 2
    assert me["stored_bytes"]["limit"] == 1000

    data = tmp_path / "people.csv"
    data.write_text("x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    uploaded = _invoke("--api-key", token, "datasets", "upload", str(data), "--target", "label")
    assert uploaded.exit_code == 0, uploaded.output
    ref = next(w for w in uploaded.output.split() if w.startswith("upload:")).rstrip(":")
    dataset_id = ref.removeprefix("upload:")
    listed = _invoke("--api-key", token, "datasets", "list")
    assert ref in listed.output and "digits" in listed.output
    shown = _invoke("--api-key", token, "datasets", "show", dataset_id)
    assert '"owner": "alice"' in shown.output
    assert _invoke("--api-key", token, "datasets", "delete", dataset_id).exit_code == 0
    assert _invoke("--api-key", token, "datasets", "show", dataset_id).exit_code == 1

    keys = _invoke("keys", "list")
    assert key_id in keys.output and "alice" in keys.output
    assert _invoke("keys", "revoke", key_id).exit_code == 0
    assert _invoke("keys", "revoke", key_id).exit_code == 1
    assert _invoke("--api-key", token, "whoami").exit_code == 1


def test_delete_job(wired: TestClient) -> None:
    job_id = insert_job(status=JobStatus.FAILED)
    result = _invoke("delete", job_id)
    assert result.exit_code == 0, result.output
    assert wired.get(f"/api/v1/jobs/{job_id}").status_code == 404


def test_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(cli.app, ["jobs", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "cannot reach the API" in result.output


def test_worker_execs_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli_serve.os, "execv", lambda path, argv: calls.append(argv))
    result = runner.invoke(cli.app, ["worker", "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    assert calls == [
        [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker",
         "--loglevel", "INFO", "--concurrency", "3", "--queues", "hpsearch", "--pool", "prefork"]
    ]  # fmt: skip


def test_api_error_describes_fields() -> None:
    error = ApiError(
        422,
        {
            "error": "validation_error",
            "detail": [{"field": "a.b", "message": "too big", "limit": 3, "type": "x"}],
        },
    )
    assert "a.b: too big (limit 3)" in str(error)


def test_serve_logs_no_line_per_request_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: runs.append(kwargs))
    monkeypatch.setenv("HPSEARCH_MIGRATE_ON_START", "false")
    assert _invoke("serve", "--no-migrate").exit_code == 0
    assert _invoke("serve", "--no-migrate", "--access-log").exit_code == 0
    assert [run["access_log"] for run in runs] == [False, True]
    get_settings.cache_clear()


def test_the_leaderboard_shows_what_the_whole_job_varies(wired: TestClient) -> None:
    job_id = insert_job(status=JobStatus.SUCCEEDED, max_trials=3)
    for number, (score, depth) in enumerate([(0.9, 2), (0.8, 2), (0.1, 1)]):
        hps = {"depth": depth, "units": 8 * (number + 1), "beta_1": 0.9}
        insert_trial(job_id, number, score=score, hyperparameters=hps)
    result = _invoke("trials", job_id, "--limit", "2")
    assert result.exit_code == 0, result.output
    # the two rows shown share depth=2, which trial 2 changes; beta_1 never changes
    assert "depth=2" in result.output and "units=16" in result.output
    assert "beta_1" not in result.output


def test_a_trial_shows_its_curves_and_epochs(wired: TestClient) -> None:
    job_id = insert_job(status=JobStatus.SUCCEEDED)
    insert_trial(job_id, 0, epochs=4, score=0.8, hyperparameters={"units": 32})
    result = _invoke("trial", job_id, "0")
    assert result.exit_code == 0, result.output
    assert "learning curves" in result.output and "units=32" in result.output
    assert "▁▃▆█" in result.output  # val_accuracy 0.5, 0.6, 0.7, 0.8
    shown = _invoke("trial", job_id, "0", "--json")
    assert len(json.loads(shown.stdout)[0]["epochs"]) == 4
    assert _invoke("trial", job_id, "7").exit_code == 1


def test_every_commands_help_reads_as_sentences() -> None:
    from typer.main import get_command

    def commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
        found = []
        for name, command in group.commands.items():
            found.append((f"{prefix}{name}", command))
            if hasattr(command, "commands"):
                found += commands(command, f"{prefix}{name} ")
        return found

    for name, command in commands(get_command(cli.app)):
        summary = (command.help or "").strip().split("\n\n")[0]
        assert summary and "\n" not in summary, (name, summary)  # one unbroken first paragraph
        usage = _invoke(*name.split(), "--help").output
        assert "<bool>" not in usage and "{" not in usage.splitlines()[1], (name, usage)
        for param in command.params:  # arguments are named in capitals, as in every CLI
            if param.param_type_name == "argument":
                assert param.metavar == param.name.upper(), (name, param.name)


def test_the_leaderboard_shows_each_trials_health_and_what_goes_with_it(wired: TestClient) -> None:
    job_id = insert_job(status=JobStatus.SUCCEEDED, max_trials=8, trials_completed=8)
    collapsed = {"code": "collapsed", "evidence": {}, "remedy": "an optimizer that moves"}
    healthy = {"code": "healthy", "evidence": {}, "remedy": ""}
    for n in range(8):
        optimizer = ["adadelta", "adam"][n % 2]
        verdict = collapsed if optimizer == "adadelta" else healthy
        insert_trial(
            job_id,
            n,
            score=0.35 if optimizer == "adadelta" else 0.7 + n / 100,
            hyperparameters={"optimizer": optimizer},
            health={"verdicts": [verdict], "baseline": 0.35},
        )
    result = _invoke("trials", job_id)
    assert result.exit_code == 0, result.output
    # the column: each of the 8 rows says its verdict; then one line of advice
    assert result.output.count("collapsed") == 4 + 1 and result.output.count("healthy") == 4
    assert "4 of 4 trials with optimizer=adadelta collapsed to a constant prediction" in (
        result.output
    )


def test_a_studys_table_as_a_table_markdown_and_csv(
    wired: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import study_view

    monkeypatch.setattr(study_view, "console", Console(width=200))
    variants = {"he_normal": {}, "batch norm": {"model": {"batch_norm": "before"}}}
    spec = {**SPEC, "study": {"variants": variants, "baseline": None, "seeds": 3,
                              "confidence": 0.95}}  # fmt: skip
    job_id = insert_job(status=JobStatus.SUCCEEDED, spec=spec, max_trials=6)
    scores = {"he_normal": [0.860, 0.861, 0.859], "batch norm": [0.868, 0.870, 0.869]}
    for n in range(6):
        variant, seed = list(variants)[n % 2], n // 2
        insert_trial(job_id, n, score=scores[variant][seed], fit_duration_s=3.0,
                     hyperparameters={"variant": variant, "seed": seed})  # fmt: skip
    shown = _invoke("study", job_id)
    assert shown.exit_code == 0, shown.output
    assert "batch norm" in shown.output and "+0.90 *" in shown.output
    assert "better, beyond seed noise" in shown.output
    markdown = _invoke("study", job_id, "--markdown").output
    assert "| batch norm | 3 | 86.90 | 0.10 | 86.65 to 87.15 | +0.90 * |" in markdown
    rows = _invoke("study", job_id, "--csv").output.splitlines()
    assert rows[0].startswith("variant,is_baseline,n,mean,std,low,high,delta")
    assert rows[2].startswith("batch norm,False,3,0.869")
    assert _invoke("study", job_id, "--csv", "--json").exit_code != 0
    search = insert_job(status=JobStatus.SUCCEEDED)
    refused = _invoke("study", search)
    assert refused.exit_code != 0 and "not a technique study" in refused.output
