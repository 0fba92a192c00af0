"""Shared test helpers: running the CLI the way users do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m explain ARGS`` in a subprocess, as a user would: in an 80-column
    terminal (text is wrapped to ``COLUMNS``) unless ``env`` says otherwise."""
    env = {**os.environ, "COLUMNS": "80", **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "explain", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout,
        env=env,
    )


@pytest.fixture
def cli():
    return run_cli
