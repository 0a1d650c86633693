"""Settings and environments for the app and for the processes the tests start."""

from __future__ import annotations

import os
from pathlib import Path

from app.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token"
SANDBOX_API_KEY = "test-sandbox-api-key"
WEBHOOK_SECRET = "test-webhook-secret"
# A port nothing listens on: unit tests must never reach a real broker.
NO_BROKER = "redis://127.0.0.1:1/0"


def service_env(
    database_url: str, broker_url: str, redis_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment variables of one test deployment (API, workers and beat share it)."""
    env = {
        "ORDERSAGA_ENV": "production",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": redis_url or broker_url,
        "ORDERSAGA_ADMIN_TOKEN": ADMIN_TOKEN,
        "ORDERSAGA_SANDBOX_API_KEY": SANDBOX_API_KEY,
        "ORDERSAGA_SANDBOX_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    env.update(extra)
    return env


def settings_for(database_url: str, broker_url: str, redis_url: str | None = None, **extra: str) -> Settings:
    return load_settings(service_env(database_url, broker_url, redis_url, **extra))


def process_env(overrides: dict[str, str]) -> dict[str, str]:
    """The test process's own environment without any ordersaga setting, plus `overrides`."""
    names = ("ORDERSAGA_", "DATABASE_URL", "CELERY_", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    env.update(overrides)
    return env
