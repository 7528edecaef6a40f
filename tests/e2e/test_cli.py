"""The `gitward` command: help, migrate, admin create-user, first start, serve's address."""

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
    for command in ("serve", "migrate", "admin", "token"):
        assert command in top.stdout
    narrow = gitward("token", "narrow", "--help", cwd=tmp_path)
    for flag in ("--repository", "--read-only", "--expires-in", "--allowed-ip"):
        assert flag in narrow.stdout
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
    # The console (which service managers log) says where the password is, never what.
    log = gitward_server.log_path.read_text(errors="replace")
    assert gitward_server.admin_password not in log
    assert str(password_file) in log
    assert password_file.read_text().strip() == gitward_server.admin_password
    r = httpx.get(gitward_server.base_url + "/status")
    assert r.status_code == 200 and r.json() == {"state": "RUNNING"}


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gitward: "), result.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]
    assert "Gitward listening" not in result.stdout


def test_a_busy_port_is_an_error_before_anything_is_created(tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = gitward("serve", "--data", str(tmp_path / "data"), "--port", str(port),
                         cwd=tmp_path)
    _one_line_error(result, f"127.0.0.1:{port}", "in use")
    assert not (tmp_path / "data").exists()


def test_bad_ports_and_hosts_are_errors_before_anything_is_created(tmp_path):
    data = tmp_path / "data"
    for port in ("99999", "65536", "-1", "http", "٣٣٣", ""):
        result = gitward("serve", "--data", str(data), "--port", port, cwd=tmp_path)
        _one_line_error(result, "--port")
    result = gitward("serve", "--data", str(data), cwd=tmp_path, env={"GITWARD_PORT": "99999"})
    _one_line_error(result, "GITWARD_PORT")
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it.
    for host in ("192.0.2.1", "no-such-host.invalid"):
        result = gitward("serve", "--data", str(data), "--host", host, "--port", "0",
                         cwd=tmp_path)
        _one_line_error(result, f"cannot listen on {host}:0")
    assert not data.exists()


def test_listening_is_said_once_the_socket_is_bound(tmp_path):
    """Port 0 picks a free port: the line names the port actually bound, which answers."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITWARD_")}
    base.update(PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1", **FAST)
    process = subprocess.Popen(
        [sys.executable, "-m", "gitward.cli", "serve", "--data", str(tmp_path / "data"),
         "--port", "0"],
        cwd=tmp_path, env=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Gitward listening on "):
                break
        listening = [line for line in lines if line.startswith("Gitward listening on ")]
        assert len(listening) == 1, lines
        url = listening[0].split("listening on ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        r = httpx.get(url + "/status", timeout=10)
        assert r.status_code == 200 and r.json() == {"state": "RUNNING"}
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    assert "alembic" not in err.lower(), err


def test_commands_do_not_narrate_migrations(tmp_path):
    """Alembic's INFO lines ("Running upgrade ...") are not shown; the command's own are."""
    data = str(tmp_path / "data")
    migrated = gitward("migrate", "--data", data, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr == "", migrated.stderr
    assert migrated.stdout.strip() == "Database schema is up to date."
    made = gitward("admin", "create-user", "dora", "--email", "dora@example.com",
                   "--data", str(tmp_path / "other"), cwd=tmp_path)
    assert made.returncode == 0 and made.stderr == "", made.stderr


def test_create_user_with_undecodable_arguments(tmp_path):
    """Bytes that are not UTF-8 reach Python as lone surrogates: a clear error, no trace."""
    data = str(tmp_path / "data")
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITWARD_")}
    base.update(PYTHONPATH=str(SRC), **FAST)
    for args in ([b"bob", b"--email", b"\xff@example.com"],
                 [b"bob", b"--email", b"bob@example.com", b"--display-name", b"B\xffb"],
                 [b"b\xffb", b"--email", b"bob@example.com"]):
        result = subprocess.run(
            [sys.executable.encode(), b"-m", b"gitward.cli", b"admin", b"create-user", *args,
             b"--data", data.encode(), b"--password-stdin"],
            cwd=tmp_path, input=b"long-enough-pw\n", capture_output=True, env=base, timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert b"Traceback" not in result.stderr and result.stderr.startswith(b"gitward: ")
