"""The `gitward` command: serve, migrate, administration, and narrowing tokens offline."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from gitward.config import ConfigError, Settings


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise ConfigError(f"--port must be a number from 0 to 65535, not {text[:20]!r}")
    return int(text)


def _workers(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 256:
        raise ConfigError(f"--workers must be a number from 1 to 256, not {text[:20]!r}")
    return int(text)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data", None),
        host=getattr(args, "host", None),
        port=_port(getattr(args, "port", None)),
        workers=_workers(getattr(args, "workers", None)),
        ssl_certfile=getattr(args, "ssl_certfile", None),
        ssl_keyfile=getattr(args, "ssl_keyfile", None),
    )


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or ConfigError saying why not (a busy port, an
    address this machine does not have): checked before anything is created on disk."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        raise ConfigError(f"cannot listen on {where}: {error}") from None
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a restart may bind while old connections linger in TIME_WAIT (a
        # port someone is listening on still fails).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {where}: {error.strerror or error}") from None
    return sock


def _write_secret_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.chmod(path, 0o600)


def prepare(settings: Settings) -> None:
    """Data dir, secret, schema, and the first administrator: everything `serve` needs."""
    from gitward.runtime import Runtime, prepare_data_dir
    from gitward.services.users import bootstrap_admin
    from gitward.storage.database import migrate

    prepare_data_dir(settings)
    migrate(settings.sqlalchemy_url)
    runtime = Runtime.open(settings)
    try:
        with runtime.unit_of_work() as store:
            password = bootstrap_admin(store, runtime.passwords)
        if password is not None:
            target = settings.data_dir / "initial-admin-password"
            _write_secret_file(target, password)
            # Where it is, never the password itself: service managers keep stdout in logs.
            print(
                f"Created site administrator 'admin'. Its password is in {target} "
                "(readable only by you). Change it after signing in.",
                flush=True,
            )
    finally:
        runtime.close()


#: Collection thresholds while serving (Python's default is 700, 10, 10).
GC_THRESHOLDS = (100_000, 50, 1000)


def _settle_garbage_collector() -> None:
    """Everything built at start-up (modules, the application, its routes) is frozen out of
    the collector's sight, and collections run far less often: under load, full collections
    over those objects were the pauses behind /status's slowest answers (bench/README.md).
    Reference counting still frees almost everything at once; only cycles wait longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _ssl_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options, once the certificate and key are known to load (a wrong path
    or a key that does not match is an error at start, not a traceback in every worker)."""
    if settings.ssl_certfile is None or settings.ssl_keyfile is None:
        return {}
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"cannot use --ssl-certfile {settings.ssl_certfile} with --ssl-keyfile "
            f"{settings.ssl_keyfile}: {getattr(error, 'strerror', None) or error}"
        ) from None
    return {"ssl_certfile": str(settings.ssl_certfile), "ssl_keyfile": str(settings.ssl_keyfile)}


def cmd_serve(args: argparse.Namespace) -> int:
    from gitward.serving import METRICS_DIR_VARIABLE, Supervisor, metrics_directory, worker_count

    settings = _settings(args)
    tls = _ssl_options(settings)
    # The address first: a busy or impossible one is an error before any file is created.
    listener = bind_listener(settings.host, settings.port)
    prepare(settings)
    workers = worker_count(settings)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if workers > 1:
        print(f"Gitward is starting {workers} worker processes.", flush=True)
    scheme = "https" if tls else "http"
    print(f"Gitward listening on {scheme}://{shown}:{port}", flush=True)

    def serve() -> int:
        # A worker (or the one process) whose application failed to start exits non-zero:
        # uvicorn has logged why.
        return 0 if _serve_on(listener, settings, port, tls) else 1

    if workers == 1:
        os.environ.pop(METRICS_DIR_VARIABLE, None)
        return serve()
    directory = metrics_directory()
    try:
        # Imported once here, before the workers are forked: they share its pages.
        import gitward.web.app  # noqa: F401

        return Supervisor(workers, serve).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _serve_on(
    listener: socket.socket, settings: Settings, port: int, tls: dict[str, Any]
) -> bool:
    """One serving process: its runtime and application, on the bound socket; False when
    the application did not start."""
    import uvicorn

    from gitward.runtime import Runtime
    from gitward.web.app import create_app

    runtime = Runtime.open(settings)
    app = create_app(runtime)
    _settle_garbage_collector()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
        # X-Forwarded-For is believed from GITWARD_TRUSTED_PROXIES only (web/hosts.py), not
        # from whatever uvicorn trusts by default (loopback).
        proxy_headers=False,
        **tls,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    finally:
        runtime.close()
    return server.started


def cmd_migrate(args: argparse.Namespace) -> int:
    from gitward.runtime import prepare_data_dir
    from gitward.storage.database import migrate

    settings = _settings(args)
    prepare_data_dir(settings)
    migrate(settings.sqlalchemy_url)
    print("Database schema is up to date.")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from gitward.runtime import Runtime, prepare_data_dir
    from gitward.services.errors import ServiceError
    from gitward.services.users import create_user, generate_password
    from gitward.storage.database import migrate

    settings = _settings(args)
    # The schema, but no bootstrap administrator: whoever creates accounts by hand has
    # chosen their administrators (the first `serve` only bootstraps an empty database).
    prepare_data_dir(settings)
    migrate(settings.sqlalchemy_url)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        generated = False
    else:
        password = generate_password()
        generated = True
    runtime = Runtime.open(settings)
    try:
        with runtime.unit_of_work() as store:
            user = create_user(
                store,
                runtime.passwords,
                username=args.name,
                email=args.email,
                password=password,
                display_name=args.display_name,
                is_site_admin=args.site_admin,
            )
            store.audit.record("user.create", actor="cli", target=f"user:{user.username}")
    except ServiceError as error:
        print(f"gitward: {error.message}", file=sys.stderr)
        return 2
    finally:
        runtime.close()
    kind = "site administrator" if args.site_admin else "user"
    print(f"Created {kind} {user.username!r}.")
    if generated:
        print(f"Password: {password}")
    return 0


def _admin_runtime(args: argparse.Namespace) -> Any:
    from gitward.runtime import Runtime, prepare_data_dir
    from gitward.storage.database import migrate

    settings = _settings(args)
    prepare_data_dir(settings)
    migrate(settings.sqlalchemy_url)
    return Runtime.open(settings)


def cmd_set_password(args: argparse.Namespace) -> int:
    """A new password for an account, typed on the server itself (a lost administrator
    password): not temporary, and the account's guessing lock is lifted."""
    from gitward.services.errors import ServiceError
    from gitward.services.passwords import set_password_from_cli
    from gitward.services.users import generate_password

    typed = args.password_stdin
    password = sys.stdin.readline().rstrip("\r\n") if typed else generate_password()
    runtime = _admin_runtime(args)
    try:
        with runtime.unit_of_work() as store:
            user = set_password_from_cli(store, runtime.account_passwords, args.name, password)
    except ServiceError as error:
        print(f"gitward: {error.message}", file=sys.stderr)
        return 2
    finally:
        runtime.close()
    print(f"Set the password of {user.username!r}; their web sessions have ended.")
    if not args.password_stdin:
        print(f"Password: {password}")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    """Forget the failed password attempts of an account, from every address."""
    from gitward.services.errors import ServiceError

    runtime = _admin_runtime(args)
    try:
        with runtime.unit_of_work() as store:
            user = store.accounts.user_by_username(args.name)
            if user is None:
                raise ServiceError(f"User {args.name[:64]} does not exist.")
            before = runtime.password_guard.state(user.username)
            runtime.password_guard.unlock(user.username)
            store.audit.record(
                "user.unlock", actor="cli", target=f"user:{user.username}",
                failures=before.failures,
            )
    except ServiceError as error:
        print(f"gitward: {error.message}", file=sys.stderr)
        return 2
    finally:
        runtime.close()
    print(f"Unlocked {user.username!r} ({before.failures} failed attempts forgotten).")
    return 0


def cmd_token_narrow(args: argparse.Namespace) -> int:
    """Print TOKEN narrowed by the options: offline, with no settings, data directory,
    database or server (docs/narrowed-tokens.md)."""
    from gitward.credentials import narrowing

    token = sys.stdin.readline().strip() if args.token == "-" else args.token.strip()
    try:
        caveat = narrowing.caveat_of(
            repositories=args.repository or (),
            read_only=args.read_only,
            expires_in=args.expires_in,
            allowed_ips=args.allowed_ip or (),
        )
        derived = narrowing.narrow(token, caveat)
    except narrowing.NarrowingError as error:
        print(f"gitward: {error}", file=sys.stderr)
        return 2
    print(derived)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gitward",
        description="Self-hosted Git server with Bitbucket's access model.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_data(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data", type=Path, help="data directory (default: $GITWARD_DATA or ./gitward-data)"
        )

    serve = sub.add_parser("serve", help="run the server (applies migrations first)")
    with_data(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", help="port to listen on (default 7990; 0 picks a free one)")
    serve.add_argument(
        "--workers", help="worker processes (default: one per core, at most what the "
        "database's connection limit allows; $GITWARD_WORKERS)",
    )
    serve.add_argument(
        "--ssl-certfile", type=Path, help="serve HTTPS with this PEM certificate (chain)"
    )
    serve.add_argument("--ssl-keyfile", type=Path, help="the certificate's PEM private key")
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="bring the database schema up to date")
    with_data(mig)
    mig.set_defaults(func=cmd_migrate)

    admin = sub.add_parser("admin", help="administration commands")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="COMMAND")
    create = admin_sub.add_parser("create-user", help="create a user account")
    with_data(create)
    create.add_argument("name", help="username")
    create.add_argument("--email", required=True)
    create.add_argument("--display-name")
    create.add_argument(
        "--site-admin", action="store_true", help="make the user a site administrator"
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(func=cmd_create_user)
    setpw = admin_sub.add_parser(
        "set-password", help="set a user's password (e.g. a lost administrator password)"
    )
    with_data(setpw)
    setpw.add_argument("name", help="username")
    setpw.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (otherwise one is generated and printed)",
    )
    setpw.set_defaults(func=cmd_set_password)
    unlock = admin_sub.add_parser(
        "unlock", help="lift the guessing lock of a user's password, from every address"
    )
    with_data(unlock)
    unlock.add_argument("name", help="username")
    unlock.set_defaults(func=cmd_unlock)

    def admin_help(_args: argparse.Namespace) -> int:
        admin.print_help()
        return 2

    admin.set_defaults(func=admin_help)

    token = sub.add_parser("token", help="work on tokens you hold, offline")
    token_sub = token.add_subparsers(dest="token_command", metavar="COMMAND")
    narrow = token_sub.add_parser(
        "narrow",
        help="print a narrowed token derived from TOKEN (no server is asked)",
        description="Derive a token that can do no more than TOKEN, and only within the "
        "restrictions given (each one repeatable where shown). Works offline: the server "
        "verifies the narrowed token when it is used. Every restriction adds to those of "
        "TOKEN if it is itself a narrowed token.",
    )
    narrow.add_argument(
        "token", metavar="TOKEN",
        help="a personal, repository, project or workspace access token, or a narrowed "
        "token; - reads it from standard input (keeps it out of the process list)",
    )
    narrow.add_argument(
        "--repository", action="append", metavar="WS/SLUG",
        help="reach only this repository (repeatable: only these repositories)",
    )
    narrow.add_argument("--read-only", action="store_true", help="only actions that read")
    narrow.add_argument(
        "--expires-in", metavar="DURATION",
        help="expire after this long (e.g. 30m, 1h, 7d, 2w), or with TOKEN if sooner",
    )
    narrow.add_argument(
        "--allowed-ip", action="append", metavar="CIDR",
        help="usable only from this network (repeatable); intersected with TOKEN's list",
    )
    narrow.set_defaults(func=cmd_token_narrow)

    def token_help(_args: argparse.Namespace) -> int:
        token.print_help()
        return 2

    token.set_defaults(func=token_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic narrates every migration step at INFO; its warnings still show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        result: int = args.func(args)
    except ConfigError as error:
        print(f"gitward: {error}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
