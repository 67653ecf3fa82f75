"""The code passes the lint rules and is formatted as pyproject.toml says ([tool.ruff]); CI runs this with the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["cli", "worker", "producers", "fake_intercom", "demo", "tests", "bench", "console"]


def test_ruff_finds_nothing():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", *PACKAGES], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"ruff check failed; run `ruff check --fix` and look at the rest:\n{out.stdout}{out.stderr}"


def test_ruff_format_changes_nothing():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *PACKAGES], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"some files are not formatted; run `ruff format`:\n{out.stdout}{out.stderr}"
