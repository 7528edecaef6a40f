"""Settings.from_env: defaults, parsing, and clear errors for values that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitward.config import ConfigError, Settings


def test_defaults():
    s = Settings.from_env({})
    assert s.data_dir == Path("gitward-data")
    assert s.port == 7990
    assert s.host == "127.0.0.1"
    assert s.max_push_bytes == 3_500_000_000
    assert s.max_body_bytes == 1_000_000
    assert s.is_sqlite
    assert s.sqlalchemy_url.endswith("gitward-data/gitward.db")


def test_values_are_read():
    s = Settings.from_env(
        {
            "GITWARD_DATA": "/srv/gw",
            "GITWARD_PORT": " 8080 ",
            "GITWARD_HOST": "0.0.0.0",
            "GITWARD_MAX_BODY_BYTES": "2048",
            "GITWARD_MAX_PUSH_BYTES": "1000",
            "GITWARD_PAT_MAX_EXPIRY_DAYS": "90",
            "GITWARD_PAT_EXPIRY_REQUIRED": "yes",
            "GITWARD_BASE_URL": "https://git.example.com/",
            "GITWARD_DATABASE_URL": "postgresql://gw@db:5432/gw",
        }
    )
    assert s.data_dir == Path("/srv/gw")
    assert s.port == 8080
    assert s.max_body_bytes == 2048
    assert s.max_push_bytes == 1000
    assert s.pat_max_expiry_days == 90
    assert s.pat_expiry_required is True
    assert s.base_url == "https://git.example.com"
    assert s.sqlalchemy_url == "postgresql+psycopg://gw@db:5432/gw"
    assert not s.is_sqlite


def test_overrides_win_and_none_is_ignored():
    s = Settings.from_env({"GITWARD_PORT": "8080"}, port=9000, host=None, data_dir="/x")
    assert s.port == 9000
    assert s.host == "127.0.0.1"
    assert s.data_dir == Path("/x")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITWARD_PORT": "http"}, "GITWARD_PORT must be an integer, not 'http'"),
        ({"GITWARD_PORT": "-1"}, "GITWARD_PORT must be at least 0"),
        ({"GITWARD_PORT": "70000"}, "GITWARD_PORT must be at most 65535"),
        ({"GITWARD_MAX_BODY_BYTES": "0"}, "GITWARD_MAX_BODY_BYTES must be at least 1"),
        ({"GITWARD_MAX_BODY_BYTES": "1MB"}, "GITWARD_MAX_BODY_BYTES must be an integer"),
        ({"GITWARD_MAX_PUSH_BYTES": "3.5e9"}, "GITWARD_MAX_PUSH_BYTES must be an integer"),
        ({"GITWARD_PUSH_TIMEOUT_SECONDS": "0"}, "GITWARD_PUSH_TIMEOUT_SECONDS must be at least 1"),
        ({"GITWARD_PUSH_TIMEOUT_SECONDS": "1h"}, "GITWARD_PUSH_TIMEOUT_SECONDS must be an integer"),
        ({"GITWARD_PAT_MAX_EXPIRY_DAYS": "0"}, "GITWARD_PAT_MAX_EXPIRY_DAYS must be at least 1"),
        ({"GITWARD_PAT_MAX_PER_USER": "x"}, "GITWARD_PAT_MAX_PER_USER must be an integer"),
        ({"GITWARD_PAT_EXPIRY_REQUIRED": "maybe"}, "GITWARD_PAT_EXPIRY_REQUIRED must be true"),
        ({"GITWARD_ARGON2_MEMORY_KIB": "0"}, "GITWARD_ARGON2_MEMORY_KIB must be at least 1"),
        ({"GITWARD_LOG_LEVEL": "loud"}, "GITWARD_LOG_LEVEL must be one of"),
    ],
)
def test_bad_values_are_config_errors(env, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="unknown settings: colour"):
        Settings.from_env({}, colour="blue")


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_false_values(raw):
    assert Settings.from_env({"GITWARD_PAT_EXPIRY_REQUIRED": raw}).pat_expiry_required is False


def test_log_level_is_normalised():
    assert Settings.from_env({"GITWARD_LOG_LEVEL": " DEBUG "}).log_level == "debug"


def test_push_timeout():
    assert Settings.from_env({}).push_timeout_seconds == 3600
    assert Settings.from_env({"GITWARD_PUSH_TIMEOUT_SECONDS": "90"}).push_timeout_seconds == 90


def test_default_workspace():
    assert Settings.from_env({}).default_workspace == "default"
    assert Settings.from_env({"GITWARD_DEFAULT_WORKSPACE": " Server "}).default_workspace == "server"
    for bad in ["", "-x", "a/b", "x" * 64]:
        with pytest.raises(ConfigError, match="GITWARD_DEFAULT_WORKSPACE"):
            Settings.from_env({"GITWARD_DEFAULT_WORKSPACE": bad})


def test_account_password_settings():
    defaults = Settings.from_env({})
    assert (defaults.auth_failure_limit, defaults.auth_failure_account_limit,
            defaults.auth_failure_address_limit, defaults.auth_failure_window_seconds) == (
        10, 100, 100, 600)
    assert defaults.min_password_length == 12 and defaults.password_cache_seconds == 60
    s = Settings.from_env({
        "GITWARD_AUTH_FAILURE_ACCOUNT_LIMIT": "250",
        "GITWARD_AUTH_FAILURE_ADDRESS_LIMIT": "40",
        "GITWARD_MIN_PASSWORD_LENGTH": "16",
        "GITWARD_PASSWORD_CACHE_SECONDS": "0",
    })
    assert (s.auth_failure_account_limit, s.auth_failure_address_limit) == (250, 40)
    assert s.min_password_length == 16 and s.password_cache_seconds == 0
    for name, raw in (("GITWARD_PASSWORD_CACHE_SECONDS", "-1"),
                      ("GITWARD_PASSWORD_CACHE_SECONDS", "3601"),
                      ("GITWARD_AUTH_FAILURE_ACCOUNT_LIMIT", "0"),
                      ("GITWARD_MIN_PASSWORD_LENGTH", "many")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: raw})


def test_push_protection():
    assert Settings.from_env({}).push_protection is True
    assert Settings.from_env({"GITWARD_PUSH_PROTECTION": "off"}).push_protection is False
    assert Settings.from_env({"GITWARD_PUSH_PROTECTION": "on"}).push_protection is True
    with pytest.raises(ConfigError, match="GITWARD_PUSH_PROTECTION"):
        Settings.from_env({"GITWARD_PUSH_PROTECTION": "sometimes"})


def test_scale_settings():
    s = Settings.from_env({"GITWARD_WORKERS": "4", "GITWARD_METRICS": "10.0.0.0/8, ::1",
                           "GITWARD_SSL_CERTFILE": "/etc/gw/cert.pem",
                           "GITWARD_SSL_KEYFILE": "/etc/gw/key.pem"})
    assert s.workers == 4
    assert s.metrics_from == ("10.0.0.0/8", "::1/128")
    assert s.ssl_certfile == Path("/etc/gw/cert.pem") and s.ssl_keyfile == Path("/etc/gw/key.pem")
    defaults = Settings.from_env({})
    assert defaults.workers is None and defaults.ssl_certfile is None
    assert defaults.metrics_from == ("127.0.0.0/8", "::1/128")
    assert Settings.from_env({"GITWARD_METRICS": "off"}).metrics_from == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITWARD_WORKERS": "0"}, "GITWARD_WORKERS must be at least 1"),
        ({"GITWARD_WORKERS": "many"}, "GITWARD_WORKERS must be an integer"),
        ({"GITWARD_METRICS": "everyone"}, "GITWARD_METRICS: 'everyone' is not an IP address"),
        ({"GITWARD_SSL_CERTFILE": "/etc/gw/cert.pem"}, "give both or neither"),
    ],
)
def test_scale_settings_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_webhook_settings():
    settings = Settings.from_env({
        "GITWARD_WEBHOOK_POLL_SECONDS": "0.5", "GITWARD_WEBHOOK_BACKOFF_SECONDS": "2",
        "GITWARD_WEBHOOK_BACKOFF_MAX_SECONDS": "60", "GITWARD_WEBHOOK_MAX_ATTEMPTS": "3",
        "GITWARD_WEBHOOK_TIMEOUT_SECONDS": "5", "GITWARD_WEBHOOK_WORKER": "off",
        "GITWARD_WEBHOOK_HISTORY_DAYS": "7",
    })
    assert settings.webhook_history_days == 7
    assert (settings.webhook_poll_seconds, settings.webhook_backoff_seconds,
            settings.webhook_backoff_max_seconds, settings.webhook_max_attempts,
            settings.webhook_timeout_seconds, settings.webhook_worker) == (
        0.5, 2.0, 60.0, 3, 5.0, False)
    defaults = Settings.from_env({})
    assert (defaults.webhook_poll_seconds, defaults.webhook_max_attempts,
            defaults.webhook_worker) == (5.0, 10, True)
    for key, raw in (("GITWARD_WEBHOOK_POLL_SECONDS", "0"),
                     ("GITWARD_WEBHOOK_BACKOFF_SECONDS", "soon"),
                     ("GITWARD_WEBHOOK_MAX_ATTEMPTS", "0")):
        with pytest.raises(ConfigError, match=key):
            Settings.from_env({key: raw})
