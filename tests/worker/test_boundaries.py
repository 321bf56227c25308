"""The code's shape, checked: TensorFlow lives in one folder of the worker, SQL in db/ only, no
module grows past 400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "worker" / "training"
#: what loads TensorFlow when imported (the spec -> Keras builders of search_spaces too).
TENSORFLOW_MODULES = (
    "tensorflow",
    "keras",
    "keras_tuner",
    "search_spaces.builder",
    "search_spaces.hyperparameters",
    "search_spaces.keras_objects",
)
#: what builds SQL: allowed in db/ only.
SQL_NAMES = {"select", "update", "insert", "delete", "text", "func", "or_", "and_", "exists"}


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _imports(tree: ast.AST) -> list[tuple[str, ast.AST, bool]]:
    """``(module, node, at_top_level)`` for every import in ``tree``."""
    found = []
    top = set(map(id, getattr(tree, "body", [])))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node, id(node) in top))
    return found


def _loads(module: str, names: tuple[str, ...]) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def test_only_worker_training_imports_tensorflow_keras_or_keras_tuner() -> None:
    offenders = []
    for path in _modules("worker"):
        if TRAINING in path.parents:
            continue
        for module, node, at_top in _imports(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if _loads(module, TENSORFLOW_MODULES):
                offenders.append(f"{where} imports {module}")
            elif _loads(module, ("worker.training",)) and at_top:
                offenders.append(f"{where} imports {module} at module level (import it lazily)")
    assert not offenders, "\n".join(offenders)


def test_the_celery_parent_and_the_attempt_modules_load_no_tensorflow() -> None:
    code = (
        "import sys, worker.celery_app, worker.tasks, worker.reaper, worker.attempt, "
        "worker.dispatcher, worker.lease, api.main\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("folder", ["api", "worker"])
def test_sql_is_built_in_db_only(folder: str) -> None:
    offenders = []
    for path in _modules(folder):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                names = {alias.name for alias in node.names} & SQL_NAMES
                if names:
                    offenders.append(f"{where} imports {sorted(names)} from {node.module}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "scalar", "scalars")
            ):
                offenders.append(f"{where} runs a statement (.{node.func.attr})")
    assert not offenders, "\n".join(offenders)


def test_no_module_is_over_400_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in _modules("api", "db", "worker", "search_spaces")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > 400
    ]
    assert not long, "\n".join(long)
