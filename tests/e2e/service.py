"""Start the real service (migrate, API, Celery worker) as separate processes, as compose does.

The commands are read from docker-compose.yml, so the integration tests run exactly what a
deployment runs; only the bind address and the database/broker URLs differ.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from api.cli.demo import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose_command(service: str) -> list[str]:
    """The command list of a docker-compose service."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return list(compose["services"][service]["command"])


def compose_auth_mode() -> str:
    """The ``HPSEARCH_AUTH_MODE`` the compose deployment runs with."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return str(compose["x-hpsearch-env"]["HPSEARCH_AUTH_MODE"])


def with_option(command: list[str], option: str, value: str) -> list[str]:
    command = list(command)
    if option in command:
        command[command.index(option) + 1] = value
    else:
        command += [option, value]
    return command


def _executable(command: list[str]) -> list[str]:
    # "hpsearch" is the console script of this venv; run it with this interpreter's bin dir.
    script = Path(sys.executable).with_name(command[0])
    return [str(script), *command[1:]]


@dataclass
class Service:
    """A running API + worker pair and their logs."""

    env: dict[str, str]
    log_dir: Path
    base_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def for_urls(cls, tmp_path: Path, database_url: str | None, broker_url: str | None) -> Service:
        """A service (nothing started yet) on these URLs, logging under ``tmp_path/logs``."""
        log_dir = tmp_path / "logs"
        log_dir.mkdir(exist_ok=True)
        return cls(env=service_env(tmp_path, database_url, broker_url), log_dir=log_dir)

    def run_once(self, name: str, command: list[str], timeout: float = 120) -> None:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            subprocess.run(
                _executable(command),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=timeout,
            )

    def create_key(self, owner: str) -> str:
        """``hpsearch keys create OWNER`` (as an admin runs it in a deployment); the token."""
        result = subprocess.run(
            _executable(["hpsearch", "keys", "create", owner]),
            env=self.env,
            capture_output=True,
            check=True,
            timeout=120,
            text=True,
        )
        return result.stdout.strip().splitlines()[-1]

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        out = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            _executable(command),
            env={**self.env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"service not healthy after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            parts.append(f"----- {log.name} -----\n{log.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)

    def start_api(self) -> None:
        """``hpsearch serve`` (compose's command) on a free local port; waits until healthy."""
        if not self.base_url:
            self.base_url = f"http://127.0.0.1:{free_port()}"
        port = self.base_url.rsplit(":", 1)[1]
        api = with_option(
            with_option(compose_command("api"), "--host", "127.0.0.1"), "--port", port
        )
        self.start("api", api)
        self.wait_healthy()

    def start_worker(self, name: str = "worker", env: dict[str, str] | None = None) -> None:
        """``hpsearch worker`` (compose's command), one pool process."""
        self.start(name, compose_command("worker"), env)

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Signal a process group (kill -9 by default) and wait for it to end."""
        proc = self.processes.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)

    def terminate(self, name: str, timeout: float = 60) -> float:
        """SIGTERM to the process alone (as a supervisor stops a service); the seconds it took
        to exit. Raises ``subprocess.TimeoutExpired`` if it does not."""
        proc = self.processes[name]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
        self.processes.pop(name)
        return time.monotonic() - started

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def session_processes(session_id: int) -> list[str]:
    """The processes still alive in a session (a process started with ``start_new_session``
    leads one whose id is its pid; its orphans keep it): ``"pid command"`` each."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            alive.append(f"{stat.parent.name} {cmdline.decode(errors='replace')[:120]}")
    return alive


def service_env(tmp_path: Path, database_url: str | None, broker_url: str | None) -> dict[str, str]:
    """This environment without HPSEARCH_* variables, plus a data dir and the given URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
    env["HPSEARCH_DATA_DIR"] = str(tmp_path / "data")
    env["HPSEARCH_HEARTBEAT_INTERVAL_S"] = "2"
    # Fault tests start many APIs and never predict: no TensorFlow child racing their workers
    # for 2 cores. The tests that predict or check the warm start turn it back on.
    env["HPSEARCH_PREWARM_PREDICTOR"] = "false"
    if database_url:
        env["HPSEARCH_DATABASE_URL"] = database_url
    if broker_url:
        env["HPSEARCH_BROKER_URL"] = broker_url
    return env


def start_service(
    tmp_path: Path,
    database_url: str | None,
    broker_url: str | None,
    auth_mode: str = "open",
) -> Service:
    """Migrate, then start the API and one worker with the compose commands."""
    service = Service.for_urls(tmp_path, database_url, broker_url)
    service.env["HPSEARCH_AUTH_MODE"] = auth_mode
    service.env["HPSEARCH_PREWARM_PREDICTOR"] = "true"  # as deployed: it predicts
    port = free_port()
    service.base_url = f"http://127.0.0.1:{port}"
    service.run_once("migrate", compose_command("migrate"))
    api = with_option(
        with_option(compose_command("api"), "--host", "127.0.0.1"), "--port", str(port)
    )
    service.start("api", api)
    service.start("worker", compose_command("worker"))
    try:
        service.wait_healthy()
    except Exception:
        service.stop()
        raise
    return service
