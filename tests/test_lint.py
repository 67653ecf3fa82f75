"""The code passes the lint rules in pyproject.toml ([tool.ruff]); CI runs this with the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "worker", "producers", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"ruff check failed; run `ruff check --fix` and look at the rest:\n{out.stdout}{out.stderr}"
