"""docker-compose.yml cannot run here (no Docker engine): check it by reading it.

Every command it runs must be a real `hpsearch` command with real options (the e2e tests start
the API and worker from these very command lines), its environment must name real settings, and
the services must wait for what they need.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.main import get_command

from api.cli import app
from db.settings import Settings
from tests.e2e.service import COMPOSE_FILE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_services_present(compose: dict) -> None:
    assert {"postgres", "redis", "migrate", "api", "worker", "flower"} <= set(compose["services"])


def test_backing_services_have_health_checks(compose: dict) -> None:
    for name in ("postgres", "redis"):
        assert "healthcheck" in compose["services"][name], name


def test_migration_runs_once_before_api_and_worker(compose: dict) -> None:
    services = compose["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["migrate", "api", "worker", "flower"])
def test_commands_are_real_cli_commands(compose: dict, service: str) -> None:
    command = compose["services"][service]["command"]
    assert command[0] == "hpsearch"
    cli = get_command(app)
    sub = cli.commands[command[1]]  # KeyError: the compose file runs a command that does not exist
    known = {opt for param in sub.params for opt in (*param.opts, *param.secondary_opts)}
    for token in command[2:]:
        if token.startswith("--"):
            assert token in known, f"{service}: {token} is not an option of `hpsearch {command[1]}`"


def test_environment_names_real_settings(compose: dict) -> None:
    fields = set(Settings.model_fields)
    env = compose["x-hpsearch-env"]
    for var in env:
        assert var.startswith("HPSEARCH_")
        assert var.removeprefix("HPSEARCH_").lower() in fields, var
    assert env["HPSEARCH_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["HPSEARCH_BROKER_URL"].startswith("redis://")
    # a deployment reachable by others must not run in the open mode
    assert env["HPSEARCH_AUTH_MODE"] == "keys"


def test_all_services_built_from_one_dockerfile(compose: dict) -> None:
    for name in ("migrate", "api", "worker", "flower"):
        assert compose["services"][name]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    for package in ("api", "worker", "search_spaces", "db"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_prometheus_scrapes_the_apis_metrics(compose: dict) -> None:
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]  # started only when asked for
    source, target = prometheus["volumes"][0].split(":")[:2]
    assert target == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / source).read_text())
    (scrape,) = config["scrape_configs"]
    assert scrape["metrics_path"] == "/metrics"
    port = compose["services"]["api"]["command"][
        compose["services"]["api"]["command"].index("--port") + 1
    ]
    assert scrape["static_configs"][0]["targets"] == [f"api:{port}"]
