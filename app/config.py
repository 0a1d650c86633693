"""Typed configuration read from the environment.

Every process (API, worker, beat, flower, alembic) loads the same `Settings`, so a bad value
stops each of them the same way: one line naming the variable, and a non-zero exit.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import NoReturn

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.logs import LOG_FORMATS
from app.payment_settings import ProviderSettings, load_provider_settings
from app.setting_values import ConfigError, choice, choices, get, nice, positive_int, url

ENVIRONMENTS = ("production", "development")
PAYMENT_PROVIDERS = ("sandbox", "alipay", "wechatpay", "stripe")
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")

# Fixed values that development mode fills in, so `make run` needs no secrets.
DEVELOPMENT_SECRETS = {
    "ORDERSAGA_ADMIN_TOKEN": "dev-admin-token",
    "ORDERSAGA_SANDBOX_API_KEY": "dev-sandbox-api-key",
    "ORDERSAGA_SANDBOX_WEBHOOK_SECRET": "dev-sandbox-webhook-secret",
}
DEVELOPMENT_SECRETS_WARNING = (
    "ORDERSAGA_ENV=development: using fixed development secrets; never in production"
)
# `make run` says DEVELOPMENT_SECRETS_WARNING once for all its processes, and sets this variable
# for them so that they do not repeat it five times.
DEVELOPMENT_WARNING_GIVEN = "ORDERSAGA_DEVELOPMENT_WARNING_GIVEN"

# While `make run` runs, the settings it runs with (its private Redis may be on any port), so that
# a command typed beside it from the repository root needs nothing exported. It holds a lock on
# the file for as long as it runs: a file left behind by a make run that was killed is ignored.
MAKE_RUN_SETTINGS = os.path.join("var", "make-run.json")
SETTING_NAMES = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    broker_url: str
    redis_url: str
    admin_token: str
    public_url: str
    payment_timeout_seconds: int
    sweep_interval_seconds: int
    saga_stale_seconds: int
    outbox_retention_seconds: int
    payment_providers: tuple[str, ...]
    sandbox_api_key: str
    sandbox_webhook_secret: str
    currency: str
    step_max_retries: int = 5
    step_retry_backoff_seconds: int = 2
    flash_rate_per_second: int = 5
    flash_max_queue_depth: int = 10_000
    flash_sagas_per_second: int = 25
    worker_nice: int = 10
    used_development_secrets: bool = False
    # Whether this process says at start that it uses the development secrets: not when the
    # `make run` that started it has already said so.
    warn_development_secrets: bool = False
    providers: ProviderSettings = field(default_factory=ProviderSettings)
    log_format: str = "text"
    flower_url: str | None = None  # where operators open Flower: the saga console links there

    @property
    def payment_provider(self) -> str:
        """The default provider: the first one `ORDERSAGA_PAYMENT_PROVIDER` lists."""
        return self.payment_providers[0]

    @property
    def is_development(self) -> bool:
        return self.env == "development"


def _database_url(environ: Mapping[str, str]) -> str:
    value = get(environ, "DATABASE_URL") or "sqlite:///var/ordersaga.sqlite3"
    try:
        parsed = make_url(value)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL is not a SQLAlchemy URL: {value!r}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"DATABASE_URL must be a sqlite or postgresql URL, got {value!r}")
    return value


def _secret(environ: Mapping[str, str], name: str, env: str) -> tuple[str, bool]:
    value = get(environ, name)
    if value is not None:
        return value, False
    if env == "development":
        return DEVELOPMENT_SECRETS[name], True
    raise ConfigError(f"{name} is required (set it, or ORDERSAGA_ENV=development for dev values)")


@dataclass(frozen=True)
class _Secrets:
    admin_token: str
    sandbox_api_key: str
    sandbox_webhook_secret: str
    used_development: bool


def _secrets(environ: Mapping[str, str], env: str) -> _Secrets:
    admin_token, dev1 = _secret(environ, "ORDERSAGA_ADMIN_TOKEN", env)
    api_key, dev2 = _secret(environ, "ORDERSAGA_SANDBOX_API_KEY", env)
    webhook_secret, dev3 = _secret(environ, "ORDERSAGA_SANDBOX_WEBHOOK_SECRET", env)
    return _Secrets(admin_token, api_key, webhook_secret, used_development=dev1 or dev2 or dev3)


def _service_urls(environ: Mapping[str, str]) -> tuple[str, str, str]:
    """The broker's, Redis's (the broker's when it is Redis) and the public base URL."""
    broker_url = url(
        "CELERY_BROKER_URL",
        get(environ, "CELERY_BROKER_URL") or "redis://localhost:6379/0",
        BROKER_SCHEMES,
    )
    default_redis = broker_url if broker_url.startswith(("redis:", "rediss:")) else None
    redis_url = url(
        "REDIS_URL",
        get(environ, "REDIS_URL") or default_redis or "redis://localhost:6379/0",
        ("redis", "rediss"),
    )
    public_url = url(
        "ORDERSAGA_PUBLIC_URL",
        get(environ, "ORDERSAGA_PUBLIC_URL") or "http://127.0.0.1:8000",
        ("http", "https"),
    ).rstrip("/")
    return broker_url, redis_url, public_url


def _flower_url(environ: Mapping[str, str]) -> str | None:
    value = get(environ, "ORDERSAGA_FLOWER_URL")
    return url("ORDERSAGA_FLOWER_URL", value, ("http", "https")).rstrip("/") if value else None


def _currency(environ: Mapping[str, str]) -> str:
    currency = get(environ, "ORDERSAGA_CURRENCY") or "CNY"
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ConfigError(f"ORDERSAGA_CURRENCY must be a 3-letter ISO 4217 code, got {currency!r}")
    return currency


def _check_currency(payment_providers: tuple[str, ...], currency: str) -> None:
    """Alipay and WeChat Pay domestic payments are in yuan only."""
    for name in ("alipay", "wechatpay"):
        if name in payment_providers and currency != "CNY":
            raise ConfigError(
                f"ORDERSAGA_CURRENCY must be CNY when ORDERSAGA_PAYMENT_PROVIDER enables {name}"
            )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise ConfigError on the first bad one."""
    environ = os.environ if environ is None else environ
    env = choice(environ, "ORDERSAGA_ENV", "production", ENVIRONMENTS)
    broker_url, redis_url, public_url = _service_urls(environ)
    currency = _currency(environ)
    saga_stale_seconds = positive_int(environ, "ORDERSAGA_SAGA_STALE_SECONDS", 120)
    secrets = _secrets(environ, env)
    warning_given = get(environ, DEVELOPMENT_WARNING_GIVEN) is not None
    payment_providers = choices(environ, "ORDERSAGA_PAYMENT_PROVIDER", "sandbox", PAYMENT_PROVIDERS)
    _check_currency(payment_providers, currency)
    return Settings(
        env=env,
        database_url=_database_url(environ),
        broker_url=broker_url,
        redis_url=redis_url,
        admin_token=secrets.admin_token,
        public_url=public_url,
        payment_timeout_seconds=positive_int(environ, "ORDERSAGA_PAYMENT_TIMEOUT_SECONDS", 900),
        sweep_interval_seconds=positive_int(environ, "ORDERSAGA_SWEEP_INTERVAL_SECONDS", 60),
        saga_stale_seconds=saga_stale_seconds,
        outbox_retention_seconds=positive_int(environ, "ORDERSAGA_OUTBOX_RETENTION_SECONDS", 86_400),
        payment_providers=payment_providers,
        sandbox_api_key=secrets.sandbox_api_key,
        sandbox_webhook_secret=secrets.sandbox_webhook_secret,
        currency=currency,
        step_max_retries=positive_int(environ, "ORDERSAGA_STEP_MAX_RETRIES", 5),
        step_retry_backoff_seconds=positive_int(environ, "ORDERSAGA_STEP_RETRY_BACKOFF_SECONDS", 2),
        flash_rate_per_second=positive_int(environ, "ORDERSAGA_FLASH_RATE_PER_SECOND", 5),
        flash_max_queue_depth=positive_int(environ, "ORDERSAGA_FLASH_MAX_QUEUE_DEPTH", 10_000),
        flash_sagas_per_second=positive_int(environ, "ORDERSAGA_FLASH_SAGAS_PER_SECOND", 25),
        worker_nice=nice(environ, "ORDERSAGA_WORKER_NICE", 10),
        used_development_secrets=secrets.used_development,
        warn_development_secrets=secrets.used_development and not warning_given,
        providers=load_provider_settings(environ, payment_providers),
        log_format=choice(environ, "ORDERSAGA_LOG_FORMAT", "text", LOG_FORMATS),
        flower_url=_flower_url(environ),
    )


def load_settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """Entry points call this: a bad setting ends the process with one line, not a traceback."""
    load_dotenv_file()
    if environ is None:
        join_make_run()
    try:
        return load_settings(environ)
    except ConfigError as error:
        exit_with(str(error))


def exit_with(message: str) -> NoReturn:
    print(f"ordersaga: configuration error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def load_dotenv_file() -> None:
    """Read `.env` from the working directory if present; real environment variables win."""
    from dotenv import load_dotenv  # only the processes that read .env need it

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)


def is_setting(name: str) -> bool:
    """Whether an environment variable is one of the service's settings (ORDERSAGA_TEST_* are the
    test suite's, which a developer may well keep exported)."""
    return (name.startswith("ORDERSAGA_") and not name.startswith("ORDERSAGA_TEST_")) or name in SETTING_NAMES


def read_make_run_settings(path: str = MAKE_RUN_SETTINGS) -> dict[str, str] | None:
    """The settings of the `make run` running from this directory; None when none runs."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - held open while its lock is probed
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # make run holds the lock: it is running
        else:
            return None  # nobody holds it: left behind by a make run that no longer runs
        try:
            data = json.load(handle)
        except ValueError:
            return None  # being written: make run has not started its processes yet
    if not isinstance(data, dict):
        return None
    return {str(name): str(value) for name, value in data.items() if is_setting(str(name))}


def join_make_run(environ: MutableMapping[str, str] | None = None, path: str = MAKE_RUN_SETTINGS) -> bool:
    """Give a process that is configured by nothing the settings of the `make run` beside it.

    Only when the environment holds no ordersaga setting at all: a process that has one (a test's,
    a deployment's) is configured by its own environment alone, and a running make run must not
    fill in what it left out. Returns whether the settings were taken.
    """
    environ = os.environ if environ is None else environ
    if any(is_setting(name) for name in environ):
        return False
    settings = read_make_run_settings(path)
    if not settings:
        return False
    for name, value in settings.items():
        environ.setdefault(name, value)
    return True
