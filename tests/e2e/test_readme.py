"""The README's commands work: its quick start and team walk-through are read out of README.md
and run, as they are written, against a real `gitward serve` (only its address and data
directory are put in), so the README cannot drift from the server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import SRC, GitwardServer, start_server

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)


@pytest.fixture
def server(tmp_path: Path):
    server = start_server(tmp_path / "server")
    try:
        yield server
    finally:
        server.stop()


def test_quick_start_and_team_walk_through(server: GitwardServer, tmp_path: Path):
    quick = [b for b in shell_blocks(section("Two commands")) if "curl" in b]
    team = shell_blocks(section("A team, step by step"))
    assert len(quick) == 1 and len(team) == 1
    # The quick start's own clone asks for the administrator's password at a prompt.
    setup = "\n".join(line for line in quick[0].splitlines()
                      if not line.startswith("git clone http://admin@"))
    host = server.base_url.removeprefix("http://")
    script = "\n".join([
        "set -euo pipefail",
        # Any HTTP error stops the walk-through, with the server's message.
        'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }',
        setup,
        team[0],
    ]).replace("localhost:7990", host).replace("gitward-data/", f"{server.data_dir}/")
    for command in ("gitward admin create-user", "/members/bob", "permissions-config",
                    "/rest/access-tokens/1.0/users/bob", "git clone", "git push"):
        assert command in script, command

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "gitward"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gitward.cli "$@"\n')
    shim.chmod(0o755)
    env = server.git_env({
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(SRC),
        "GITWARD_DATA": str(server.data_dir),
        "GITWARD_ARGON2_MEMORY_KIB": "1024",
        "GITWARD_ARGON2_TIME_COST": "1",
        "GITWARD_ARGON2_PARALLELISM": "1",
    })
    env = {k: v for k, v in env.items() if not k.startswith("GITWARD_TEST")}
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{server.log_tail()}"

    # Each step did what the README says.
    admin = server.admin
    member = server.api("GET", "/2.0/workspaces/acme/members/bob", auth=admin)
    assert member.status_code == 200, member.text
    assert "First commit" in server.git("log", "-1", "--format=%s", cwd=work / "bob-site").stdout
    assert "main" in server.branches(admin, "acme", "site")
    # The push's objects are on disk, and the API's size counts them.
    site = server.api("GET", "/2.0/repositories/acme/site", auth=admin).json()
    assert site["size"] > 0
    assert '"full_name":"acme/site"' in result.stdout.replace(" ", "")
    # Bob's token holds what he was granted and no more: no repository administration.
    token = re.search(r"gwpat_\w+", (work / "bob-site" / ".git" / "config").read_text())
    assert token is not None
    r = server.api("DELETE", "/2.0/repositories/acme/site", auth=("bob", token.group(0)))
    assert r.status_code == 403, r.text
