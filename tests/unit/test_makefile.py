"""`make serve` installs the server only; `make test` the test tools too; one stamp each."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(target: str, venv: Path) -> str:
    # Run from `make test` itself, make would announce the directories it enters: not here.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}"], cwd=ROOT,
        capture_output=True, text=True, check=True, env=env,
    )
    return result.stdout


def test_serve_installs_runtime_dependencies_only(tmp_path):
    out = dry_run("serve", tmp_path / "venv")
    assert "-m venv" in out and "pip install --quiet -e .\n" in out
    assert "[test]" not in out
    assert out.rstrip().endswith("gitward serve")


def test_test_installs_the_test_tools(tmp_path):
    out = dry_run("test", tmp_path / "venv")
    assert 'pip install --quiet -e ".[test]"' in out
    assert "pytest" in out.splitlines()[-1]


def test_each_flavour_is_installed_once(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-runtime").touch()
    assert "pip install" not in dry_run("serve", venv)
    # The runtime stamp does not stand for the test tools.
    assert '".[test]"' in dry_run("test", venv)
    (venv / ".installed-test").touch()
    assert "pip install" not in dry_run("test", venv)
