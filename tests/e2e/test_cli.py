"""The `gitward` command (SPEC §1): help, migrate, admin create-user, first start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import SRC, GitwardServer

FAST = {
    "GITWARD_ARGON2_MEMORY_KIB": "1024",
    "GITWARD_ARGON2_TIME_COST": "1",
    "GITWARD_ARGON2_PARALLELISM": "1",
}


def gitward(*args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITWARD_")}
    base.update(PYTHONPATH=str(SRC), **FAST, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "gitward.cli", *args],
        cwd=cwd, input=stdin, capture_output=True, text=True, env=base, timeout=120,
    )


def test_help_lists_every_command(tmp_path):
    top = gitward("--help", cwd=tmp_path)
    assert top.returncode == 0
    for command in ("serve", "migrate", "admin"):
        assert command in top.stdout
    admin = gitward("admin", "--help", cwd=tmp_path)
    assert admin.returncode == 0 and "create-user" in admin.stdout
    serve = gitward("serve", "--help", cwd=tmp_path)
    for flag in ("--data", "--host", "--port"):
        assert flag in serve.stdout


def test_migrate_is_idempotent_and_honours_the_data_dir(tmp_path):
    first = gitward("migrate", "--data", str(tmp_path / "d1"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "d1" / "gitward.db").exists()
    assert gitward("migrate", "--data", str(tmp_path / "d1"), cwd=tmp_path).returncode == 0
    # GITWARD_DATA, then ./gitward-data.
    assert gitward("migrate", cwd=tmp_path, env={"GITWARD_DATA": str(tmp_path / "d2")}
                   ).returncode == 0
    assert (tmp_path / "d2" / "gitward.db").exists()
    assert gitward("migrate", cwd=tmp_path).returncode == 0
    assert (tmp_path / "gitward-data" / "gitward.db").exists()


def test_create_user_from_stdin_and_generated(tmp_path):
    data = str(tmp_path / "data")
    made = gitward("admin", "create-user", "bob", "--email", "bob@example.com",
                   "--password-stdin", "--data", data, cwd=tmp_path, stdin="s3cret-password\n")
    assert made.returncode == 0, made.stderr
    assert "Password:" not in made.stdout and "s3cret-password" not in made.stdout
    generated = gitward("admin", "create-user", "root", "--email", "root@example.com",
                        "--site-admin", "--data", data, cwd=tmp_path)
    assert generated.returncode == 0 and "site administrator" in generated.stdout
    password = generated.stdout.split("Password:")[1].strip()
    duplicate = gitward("admin", "create-user", "bob", "--email", "b@example.com",
                        "--password-stdin", "--data", data, cwd=tmp_path, stdin="another-pass\n")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    bad = gitward("admin", "create-user", "carol", "--email", "not-an-address",
                  "--password-stdin", "--data", data, cwd=tmp_path, stdin="long-enough-pw\n")
    assert bad.returncode == 2 and "email" in bad.stderr.lower()
    assert "Traceback" not in bad.stderr + duplicate.stderr
    # The accounts work, with their own passwords; no bootstrap administrator was made.
    from gitward.config import Settings
    from gitward.runtime import Runtime

    runtime = Runtime.open(Settings(data_dir=Path(data)))
    try:
        with runtime.unit_of_work() as store:
            assert store.accounts.user_count() == 2
            bob, root = store.accounts.user_by_username("bob"), store.accounts.user_by_username("root")
            assert runtime.passwords.verify(bob.password_hash, "s3cret-password")
            assert runtime.passwords.verify(root.password_hash, password)
            assert root.is_site_admin and not bob.is_site_admin
    finally:
        runtime.close()
    assert not (tmp_path / "data" / "initial-admin-password").exists()


def test_bad_settings_are_a_clear_error(tmp_path):
    result = gitward("migrate", "--data", str(tmp_path / "d"), cwd=tmp_path,
                     env={"GITWARD_MAX_PUSH_BYTES": "lots"})
    assert result.returncode == 2
    assert "GITWARD_MAX_PUSH_BYTES must be an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_first_start_writes_secrets_privately(gitward_server: GitwardServer):
    data = gitward_server.data_dir
    password_file = data / "initial-admin-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600
    assert (data / "repos").is_dir()
    # Printed once to the console, and the same as the file.
    log = gitward_server.log_path.read_text(errors="replace")
    assert log.count(gitward_server.admin_password) == 1
    assert password_file.read_text().strip() == gitward_server.admin_password
    r = httpx.get(gitward_server.base_url + "/status")
    assert r.status_code == 200 and r.json() == {"state": "RUNNING"}
