"""Imports go one way: the door loads nothing of the delivery stack, the HTTP client nothing above it.

The ingestion server and the Python API send ``intercom.ingest`` by name
(worker/broker.py); importing them must not import the worker's actions,
delivery or runtime, so that the door starts fast, stays small, and does not
depend on what the workers do.  The Intercom client sits under the actions and
the failure policy: its errors and their status table are a leaf
(worker/intercom/errors.py), so importing the client loads none of them.  The
command line (cli/) sits above everything it starts: nothing imports it, and a
command loads only what it runs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DELIVERY_STACK = ("worker.actions", "worker.delivery", "worker.runtime", "worker.tasks", "worker.celery_app", "worker.mappings")


@pytest.mark.parametrize("module", ["producers.http", "producers", "producers.replay"])
def test_the_door_does_not_import_the_delivery_stack(module: str) -> None:
    code = (
        f"import json, sys; import {module}; from producers.client import build_enqueuer; "
        f"print(json.dumps([m for m in {DELIVERY_STACK!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == [], f"importing {module} loads the delivery stack"


def test_a_producer_builds_its_enqueuer_without_the_delivery_stack(redis_url: str) -> None:
    code = (
        "import json, sys; from worker.settings import Settings; from producers.client import build_enqueuer; "
        f"build_enqueuer(Settings(redis_url={redis_url!r})); "
        f"print(json.dumps([m for m in {DELIVERY_STACK!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []


def worker_modules_loaded_by(statement: str) -> list[str]:
    """The ``worker`` modules a fresh interpreter holds after ``statement``."""
    code = f"import json, sys; {statement}; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'worker')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_the_intercom_client_loads_no_action_mapping_or_policy() -> None:
    loaded = worker_modules_loaded_by("import worker.intercom.client")
    above = [m for m in loaded if m.startswith(("worker.actions", "worker.mappings", "worker.policy"))]
    assert above == [], f"importing worker.intercom.client loads {above} (all loaded: {loaded})"


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["worker", "producers", "fake_intercom", "console", "demo"])
def test_no_package_imports_the_command_line(package: str) -> None:
    upward = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "cli")
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {path: modules for path, modules in upward.items() if modules} == {}


def test_a_command_loads_what_it_runs_and_not_the_other_commands() -> None:
    code = (
        "import json, sys, click; from cli.main import main; main.get_command(click.Context(main), 'status'); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('cli', 'producers', 'demo', 'fake_intercom'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(out.stdout)
    assert "cli.status" in loaded
    assert not [m for m in loaded if m in ("cli.serve", "cli.demo", "cli.dead_letters", "producers.http", "demo", "fake_intercom")], loaded
