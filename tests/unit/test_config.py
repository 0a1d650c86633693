"""Configuration: defaults, development values, and one clear error per bad variable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import (
    DEVELOPMENT_WARNING_GIVEN,
    ConfigError,
    join_make_run,
    load_settings,
    read_make_run_settings,
)
from scripts.run import claim_settings_file, publish_settings

SECRETS = {
    "ORDERSAGA_ADMIN_TOKEN": "a",
    "ORDERSAGA_SANDBOX_API_KEY": "k",
    "ORDERSAGA_SANDBOX_WEBHOOK_SECRET": "s",
}


def test_defaults_follow_the_contract() -> None:
    settings = load_settings(SECRETS)
    assert settings.env == "production"
    assert settings.database_url == "sqlite:///var/ordersaga.sqlite3"
    assert settings.broker_url == "redis://localhost:6379/0"
    assert settings.redis_url == settings.broker_url
    assert settings.public_url == "http://127.0.0.1:8000"
    assert (
        settings.payment_timeout_seconds,
        settings.sweep_interval_seconds,
        settings.saga_stale_seconds,
    ) == (
        900,
        60,
        120,
    )
    assert (settings.payment_provider, settings.currency) == ("sandbox", "CNY")
    assert settings.worker_nice == 10
    assert not settings.used_development_secrets


def test_redis_url_defaults_to_the_broker_only_when_the_broker_is_redis() -> None:
    assert load_settings({**SECRETS, "CELERY_BROKER_URL": "redis://h:1/2"}).redis_url == "redis://h:1/2"
    amqp = load_settings({**SECRETS, "CELERY_BROKER_URL": "amqp://guest@h//"})
    assert amqp.redis_url == "redis://localhost:6379/0"


def test_development_fills_in_secrets_and_says_so() -> None:
    settings = load_settings({"ORDERSAGA_ENV": "development"})
    assert settings.admin_token and settings.sandbox_api_key and settings.sandbox_webhook_secret
    assert settings.used_development_secrets


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_production_refuses_to_start_without_a_secret(name: str) -> None:
    environ = {k: v for k, v in SECRETS.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        load_settings(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDERSAGA_PAYMENT_TIMEOUT_SECONDS", "abc"),
        ("ORDERSAGA_PAYMENT_TIMEOUT_SECONDS", "0"),
        ("ORDERSAGA_PAYMENT_TIMEOUT_SECONDS", "1.5"),
        ("ORDERSAGA_SWEEP_INTERVAL_SECONDS", "-1"),
        ("ORDERSAGA_SAGA_STALE_SECONDS", "99999999999999"),
        ("ORDERSAGA_ENV", "prod"),
        ("ORDERSAGA_PAYMENT_PROVIDER", "stripe"),
        ("ORDERSAGA_CURRENCY", "cny"),
        ("ORDERSAGA_LOG_FORMAT", "JSON"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://u@h/db"),
        ("CELERY_BROKER_URL", "http://h"),
        ("REDIS_URL", "redis://h:notaport"),
        ("ORDERSAGA_PUBLIC_URL", "ftp://h"),
        ("ORDERSAGA_WORKER_NICE", "20"),
        ("ORDERSAGA_WORKER_NICE", "-1"),
        ("ORDERSAGA_FLASH_SAGAS_PER_SECOND", "0"),
        ("ORDERSAGA_OUTBOX_RETENTION_SECONDS", "0"),
        ("ORDERSAGA_OUTBOX_RETENTION_SECONDS", "a day"),
    ],
)
def test_a_malformed_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as error:
        load_settings({**SECRETS, name: value})
    assert "\n" not in str(error.value)


def test_empty_means_default() -> None:
    assert load_settings({**SECRETS, "ORDERSAGA_PAYMENT_TIMEOUT_SECONDS": ""}).payment_timeout_seconds == 900


def test_sent_outbox_messages_are_kept_a_day_unless_told() -> None:
    assert load_settings(SECRETS).outbox_retention_seconds == 86_400
    assert (
        load_settings({**SECRETS, "ORDERSAGA_OUTBOX_RETENTION_SECONDS": "600"}).outbox_retention_seconds
        == 600
    )


def test_development_says_so_unless_make_run_already_did() -> None:
    """`make run` says it once for its five processes; a process started on its own says it."""
    assert load_settings({"ORDERSAGA_ENV": "development"}).warn_development_secrets
    quiet = load_settings({"ORDERSAGA_ENV": "development", DEVELOPMENT_WARNING_GIVEN: "1"})
    assert quiet.used_development_secrets and not quiet.warn_development_secrets
    assert not load_settings(SECRETS).warn_development_secrets


MAKE_RUN = {
    "ORDERSAGA_ENV": "development",
    "DATABASE_URL": "sqlite:///var/ordersaga.sqlite3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:40123/0",
    "REDIS_URL": "redis://127.0.0.1:40123/0",
}


@pytest.fixture
def running_make_run(tmp_path: Path) -> Iterator[Path]:
    """A settings file as a running `make run` leaves it: written, and locked while it runs."""
    path = tmp_path / "make-run.json"
    handle = claim_settings_file(path)
    publish_settings(handle, {**MAKE_RUN, "PATH": "/usr/bin", DEVELOPMENT_WARNING_GIVEN: "1"})
    yield path
    handle.close()


def test_make_run_publishes_its_settings_and_nothing_else(running_make_run: Path) -> None:
    assert json.loads(running_make_run.read_text()) == MAKE_RUN
    assert read_make_run_settings(str(running_make_run)) == MAKE_RUN


def test_a_second_make_run_in_the_same_checkout_stops(running_make_run: Path) -> None:
    with pytest.raises(SystemExit, match="another make run is running"):
        claim_settings_file(running_make_run)


def test_a_process_configured_by_nothing_joins_the_running_make_run(running_make_run: Path) -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/root", "ORDERSAGA_TEST_REDIS_URL": "redis://h/9"}
    assert join_make_run(environ, str(running_make_run))
    assert load_settings(environ).broker_url == MAKE_RUN["CELERY_BROKER_URL"]
    assert load_settings(environ).warn_development_secrets  # started on its own: it says so


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDERSAGA_ENV", "production"),
        ("ORDERSAGA_ADMIN_TOKEN", "a"),
        ("DATABASE_URL", "postgresql+psycopg://db/shop"),
        ("CELERY_BROKER_URL", "amqp://guest@mq//"),
        ("REDIS_URL", "redis://cache:6379/0"),
    ],
)
def test_a_process_with_any_setting_of_its_own_ignores_make_run(
    running_make_run: Path, name: str, value: str
) -> None:
    """A test's or a deployment's process: what it leaves out must not come from a make run."""
    environ = {"PATH": "/usr/bin", name: value}
    before = dict(environ)
    assert not join_make_run(environ, str(running_make_run))
    assert environ == before


def test_a_file_that_no_running_make_run_holds_is_ignored(tmp_path: Path) -> None:
    """What a killed make run left behind must not configure a later process."""
    path = tmp_path / "make-run.json"
    path.write_text(json.dumps(MAKE_RUN))
    environ: dict[str, str] = {}
    assert not join_make_run(environ, str(path))
    assert not join_make_run(environ, str(tmp_path / "missing.json"))
    assert environ == {}
    with pytest.raises(ConfigError, match="ORDERSAGA_ADMIN_TOKEN is required"):
        load_settings(environ)


def test_a_file_being_written_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "make-run.json"
    handle = claim_settings_file(path)
    try:
        assert read_make_run_settings(str(path)) is None  # still empty: nothing written yet
    finally:
        handle.close()
