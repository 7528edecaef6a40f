"""Settings: one typed object, read from the environment and overridden by CLI flags."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, raw: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, not {value}")
    return value


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 86400:
        raise ConfigError(f"{name} must be more than 0 and at most 86400, not {raw!r}")
    return value


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.replace(",", " ").split() if item.strip())


def _network(name: str, raw: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not an IP address or CIDR") from None


SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


def _smtp_url(raw: str) -> str:
    from urllib.parse import urlsplit

    value = raw.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise ConfigError(f"GITWARD_SMTP_URL is not a URL: {raw!r}") from None
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise ConfigError(
            "GITWARD_SMTP_URL must be smtp://host[:port], smtp+starttls://… or smtps://…, "
            "not a URL of another kind"
        )
    return value


_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _workspace_slug(name: str, raw: str) -> str:
    # The rule of services/validation.workspace_slug (reserved path words are checked there,
    # when the workspace is created).
    value = raw.strip().lower()
    if not _SLUG.match(value):
        raise ConfigError(
            f"{name} must be a workspace slug (1-63 lowercase letters, digits, '_' or '-', "
            f"starting with a letter or digit), not {raw!r}"
        )
    return value


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told. Environment names are `GITWARD_<FIELD>`."""

    data_dir: Path = field(default_factory=lambda: Path("gitward-data"))
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 7990
    # Largest push accepted, in bytes of pack data as sent by the client (3.5 GB).
    max_push_bytes: int = 3_500_000_000
    # Longest a push may take, from the start of git receive-pack to its end: past it the
    # push is stopped and nothing of it is applied, so a stolen credential cannot hold one open.
    push_timeout_seconds: int = 3600
    # Push protection: a push whose new objects hold a live Gitward secret is refused
    # (GITWARD_PUSH_PROTECTION=off turns it off where a repository does not say otherwise).
    push_protection: bool = True
    # A fetch's request (git-upload-pack: the wants and haves of its negotiation, never pack
    # data): the most bytes it may hold once gunzipped, and the most `have` lines. Past
    # either it is refused with 413 before git starts (docs/git-http.md).
    max_fetch_request_bytes: int = 32 * 1024 * 1024
    max_fetch_haves: int = 100_000
    # Refs (branches and tags) a repository may have: a push creating more is refused.
    max_refs_per_repository: int = 100_000
    # Largest JSON body accepted on the REST API.
    max_body_bytes: int = 1_000_000
    # Personal access token policy (Bitbucket Server's "token expiry" settings).
    pat_max_expiry_days: int | None = None
    pat_expiry_required: bool = False
    pat_max_per_user: int = 100
    # Guessing protection (docs/accounts.md): attempts at an account password allowed within
    # the window per account and address (the limit a guesser meets first), per account from
    # every address (a much higher ceiling, so a guesser elsewhere cannot lock the owner
    # out) and per address over every account; past one, password sign-in answers 429.
    auth_failure_limit: int = 10
    auth_failure_account_limit: int = 100
    auth_failure_address_limit: int = 100
    auth_failure_window_seconds: int = 600
    # The revocation API (docs/revocation.md): requests per client address in each window,
    # and secrets per request.
    revocation_limit: int = 30
    revocation_window_seconds: int = 600
    revocation_max_tokens: int = 100
    # The shortest account password accepted when one is set or changed.
    min_password_length: int = 12
    # How long a verified account password is remembered (by a keyed hash, never itself) so
    # that the requests of one clone or push verify it once; 0 turns it off.
    password_cache_seconds: int = 60
    # argon2id cost. The defaults are RFC 9106's second recommended option; tests lower
    # memory to keep the suite fast, never the algorithm.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    # Shared state for several worker processes or nodes (cache invalidation, rate limits).
    redis_url: str | None = None
    # Used in absolute links and as the OAuth issuer when set; otherwise links follow the
    # request's Host, which must then be one of `allowed_hosts`.
    base_url: str | None = None
    # Host names (optionally `name:port`) that requests may name in their Host header when
    # `base_url` is not set. Empty: the loopback names, and the bound address itself.
    allowed_hosts: tuple[str, ...] = ()
    # Proxies (CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are believed; from anyone
    # else those headers are ignored and the socket peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Web sessions (the `gitward_session` cookie): ended after this long without a request,
    # and this long after sign-in whatever happens; creating a credential in the pages needs
    # a sign-in (the password typed) within the last `session_fresh_seconds`.
    session_idle_seconds: int = 8 * 3600
    session_lifetime_seconds: int = 7 * 24 * 3600
    session_fresh_seconds: int = 600
    # Threads that run units of work, and so database connections in the pool (one each).
    db_threads: int = 8
    log_level: str = "info"
    # Worker processes of `gitward serve` on this host; None: one per core, at most as many
    # as the database's connection limit allows (serving.py).
    workers: int | None = None
    # TLS served by Gitward itself (a single host without a proxy): PEM files.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # Who may read the Prometheus metrics at /metrics: client addresses (CIDRs, judged after
    # GITWARD_TRUSTED_PROXIES), loopback by default; empty (`GITWARD_METRICS=off`): nobody.
    metrics_from: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # The workspace that projects created through Bitbucket Server's API go into (Server has
    # no workspaces); created, with no members, the first time a project is put there.
    default_workspace: str = "default"
    # Networks (CIDRs) that requests the server itself makes (webhook deliveries, OIDC
    # discovery and keys) may reach although they are loopback, private or link-local;
    # empty: none of those (outbound.py).
    outbound_allowed_networks: tuple[str, ...] = ()
    # Where notices to users are mailed (mail.py): `smtp://host[:port]`,
    # `smtp+starttls://user:password@host[:587]` or `smtps://…` (TLS from the start); None:
    # notices only show in the web interface. `mail_from` is their sender.
    smtp_url: str | None = field(default=None, repr=False)  # may hold a password
    mail_from: str = "gitward@localhost"
    # How often each worker process looks for credentials about to expire and for notices
    # still to mail, in seconds.
    notice_interval_seconds: int = 300
    # Webhook deliveries (docs/webhooks.md): how often the worker looks for due deliveries
    # when nothing woke it, the first retry's delay (doubled at each attempt, at most
    # `webhook_backoff_max_seconds`), the attempts before a delivery is given up, and the
    # time limit of one attempt.
    # Whether this process runs a delivery worker (off: another process delivers).
    webhook_worker: bool = True
    webhook_poll_seconds: float = 5.0
    webhook_backoff_seconds: float = 10.0
    webhook_backoff_max_seconds: float = 3600.0
    webhook_max_attempts: int = 10
    webhook_timeout_seconds: float = 10.0
    # How long finished deliveries (and their attempts) are kept for the deliveries API.
    webhook_history_days: int = 30

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with a driver chosen by us for plain `postgresql://` URLs."""
        url = self.database_url
        if not url:
            return f"sqlite:///{(self.data_dir / 'gitward.db').resolve()}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Read `GITWARD_*` variables, then apply explicit overrides (CLI flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        get = env.get
        if get("GITWARD_DATA"):
            values["data_dir"] = Path(env["GITWARD_DATA"])
        if get("GITWARD_DATABASE_URL"):
            values["database_url"] = env["GITWARD_DATABASE_URL"]
        if get("GITWARD_HOST"):
            values["host"] = env["GITWARD_HOST"]
        if get("GITWARD_PORT"):
            values["port"] = _int("GITWARD_PORT", env["GITWARD_PORT"], minimum=0, maximum=65535)
        if get("GITWARD_MAX_PUSH_BYTES"):
            values["max_push_bytes"] = _int(
                "GITWARD_MAX_PUSH_BYTES", env["GITWARD_MAX_PUSH_BYTES"], minimum=1
            )
        if get("GITWARD_PUSH_TIMEOUT_SECONDS"):
            values["push_timeout_seconds"] = _int(
                "GITWARD_PUSH_TIMEOUT_SECONDS", env["GITWARD_PUSH_TIMEOUT_SECONDS"], minimum=1
            )
        if get("GITWARD_PUSH_PROTECTION"):
            values["push_protection"] = _bool(
                "GITWARD_PUSH_PROTECTION", env["GITWARD_PUSH_PROTECTION"]
            )
        if get("GITWARD_MAX_BODY_BYTES"):
            values["max_body_bytes"] = _int(
                "GITWARD_MAX_BODY_BYTES", env["GITWARD_MAX_BODY_BYTES"], minimum=1
            )
        if get("GITWARD_PAT_MAX_EXPIRY_DAYS"):
            values["pat_max_expiry_days"] = _int(
                "GITWARD_PAT_MAX_EXPIRY_DAYS", env["GITWARD_PAT_MAX_EXPIRY_DAYS"], minimum=1
            )
        if "GITWARD_PAT_EXPIRY_REQUIRED" in env:
            values["pat_expiry_required"] = _bool(
                "GITWARD_PAT_EXPIRY_REQUIRED", env["GITWARD_PAT_EXPIRY_REQUIRED"]
            )
        if get("GITWARD_PAT_MAX_PER_USER"):
            values["pat_max_per_user"] = _int(
                "GITWARD_PAT_MAX_PER_USER", env["GITWARD_PAT_MAX_PER_USER"], minimum=1
            )
        for name in (
            "argon2_time_cost",
            "argon2_memory_kib",
            "argon2_parallelism",
            "auth_failure_limit",
            "auth_failure_account_limit",
            "auth_failure_address_limit",
            "auth_failure_window_seconds",
            "revocation_limit",
            "revocation_window_seconds",
            "revocation_max_tokens",
            "max_fetch_request_bytes",
            "max_fetch_haves",
            "max_refs_per_repository",
            "session_idle_seconds",
            "session_lifetime_seconds",
            "session_fresh_seconds",
            "min_password_length",
        ):
            key = "GITWARD_" + name.upper()
            if get(key):
                values[name] = _int(key, env[key], minimum=1)
        if get("GITWARD_PASSWORD_CACHE_SECONDS"):
            values["password_cache_seconds"] = _int(
                "GITWARD_PASSWORD_CACHE_SECONDS", env["GITWARD_PASSWORD_CACHE_SECONDS"],
                minimum=0, maximum=3600,
            )
        if get("GITWARD_REDIS_URL"):
            values["redis_url"] = env["GITWARD_REDIS_URL"]
        if get("GITWARD_BASE_URL"):
            values["base_url"] = env["GITWARD_BASE_URL"].rstrip("/")
        if "GITWARD_ALLOWED_HOSTS" in env:
            values["allowed_hosts"] = _list(env["GITWARD_ALLOWED_HOSTS"])
        if "GITWARD_TRUSTED_PROXIES" in env:
            values["trusted_proxies"] = tuple(
                str(_network("GITWARD_TRUSTED_PROXIES", item))
                for item in _list(env["GITWARD_TRUSTED_PROXIES"])
            )
        if get("GITWARD_DB_THREADS"):
            values["db_threads"] = _int(
                "GITWARD_DB_THREADS", env["GITWARD_DB_THREADS"], minimum=1, maximum=256
            )
        if get("GITWARD_LOG_LEVEL"):
            level = env["GITWARD_LOG_LEVEL"].strip().lower()
            if level not in LOG_LEVELS:
                raise ConfigError(
                    f"GITWARD_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                    f"not {env['GITWARD_LOG_LEVEL']!r}"
                )
            values["log_level"] = level
        if get("GITWARD_WORKERS"):
            values["workers"] = _int("GITWARD_WORKERS", env["GITWARD_WORKERS"], minimum=1,
                                     maximum=256)
        for name in ("ssl_certfile", "ssl_keyfile"):
            key = "GITWARD_" + name.upper()
            if get(key):
                values[name] = Path(env[key])
        if "GITWARD_METRICS" in env:
            raw = env["GITWARD_METRICS"].strip()
            values["metrics_from"] = () if raw.lower() in {"off", "none", ""} else tuple(
                str(_network("GITWARD_METRICS", item)) for item in _list(raw)
            )
        if "GITWARD_DEFAULT_WORKSPACE" in env:
            values["default_workspace"] = _workspace_slug(
                "GITWARD_DEFAULT_WORKSPACE", env["GITWARD_DEFAULT_WORKSPACE"]
            )
        if "GITWARD_OUTBOUND_ALLOWED_NETWORKS" in env:
            values["outbound_allowed_networks"] = tuple(
                str(_network("GITWARD_OUTBOUND_ALLOWED_NETWORKS", item))
                for item in _list(env["GITWARD_OUTBOUND_ALLOWED_NETWORKS"])
            )
        if get("GITWARD_SMTP_URL"):
            values["smtp_url"] = _smtp_url(env["GITWARD_SMTP_URL"])
        if get("GITWARD_MAIL_FROM"):
            values["mail_from"] = env["GITWARD_MAIL_FROM"].strip()
        if get("GITWARD_NOTICE_INTERVAL_SECONDS"):
            values["notice_interval_seconds"] = _int(
                "GITWARD_NOTICE_INTERVAL_SECONDS", env["GITWARD_NOTICE_INTERVAL_SECONDS"],
                minimum=1, maximum=86_400,
            )
        for name in ("webhook_poll_seconds", "webhook_backoff_seconds",
                     "webhook_backoff_max_seconds", "webhook_timeout_seconds"):
            key = "GITWARD_" + name.upper()
            if get(key):
                values[name] = _seconds(key, env[key])
        if "GITWARD_WEBHOOK_WORKER" in env:
            values["webhook_worker"] = _bool(
                "GITWARD_WEBHOOK_WORKER", env["GITWARD_WEBHOOK_WORKER"]
            )
        if get("GITWARD_WEBHOOK_HISTORY_DAYS"):
            values["webhook_history_days"] = _int(
                "GITWARD_WEBHOOK_HISTORY_DAYS", env["GITWARD_WEBHOOK_HISTORY_DAYS"],
                minimum=1, maximum=36500,
            )
        if get("GITWARD_WEBHOOK_MAX_ATTEMPTS"):
            values["webhook_max_attempts"] = _int(
                "GITWARD_WEBHOOK_MAX_ATTEMPTS", env["GITWARD_WEBHOOK_MAX_ATTEMPTS"],
                minimum=1, maximum=100,
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        settings = cls(**values)
        if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
            raise ConfigError("--ssl-certfile and --ssl-keyfile go together: give both or neither")
        return settings

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})
