"""The types hold: mypy over every package ([tool.mypy] in pyproject.toml); CI runs this with the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_nothing() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"mypy found type errors:\n{out.stdout}{out.stderr}"
