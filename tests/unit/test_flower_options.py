"""Which FLOWER_* variables the service adds for Flower, and that an operator's own win."""

from __future__ import annotations

import dataclasses

import pytest

from app.flower_options import flower_environment
from app.setting_values import ConfigError
from tests.support.env import ADMIN_TOKEN, settings_for

PRODUCTION = settings_for("sqlite://", "redis://127.0.0.1:6379/0")


def test_outside_development_flower_asks_for_the_operators_token() -> None:
    chosen = flower_environment(PRODUCTION, {})
    assert chosen["FLOWER_BASIC_AUTH"] == f"operator:{ADMIN_TOKEN}"
    assert chosen["FLOWER_PERSISTENT"] == "true" and chosen["FLOWER_DB"].endswith("var/flower.db")


def test_in_development_flower_asks_for_nothing() -> None:
    development = dataclasses.replace(PRODUCTION, env="development")
    assert "FLOWER_BASIC_AUTH" not in flower_environment(development, {})


@pytest.mark.parametrize("own", [{"FLOWER_BASIC_AUTH": "ops:secret"}, {"FLOWER_AUTH": ".*@shop\\.example"}])
def test_an_operators_own_choice_of_auth_wins(own: dict[str, str]) -> None:
    chosen = flower_environment(PRODUCTION, {**own, "FLOWER_DB": "/srv/flower.db"})
    assert "FLOWER_BASIC_AUTH" not in chosen and "FLOWER_DB" not in chosen


def test_a_token_flower_would_split_is_refused() -> None:
    with pytest.raises(ConfigError, match="comma"):
        flower_environment(dataclasses.replace(PRODUCTION, admin_token="a,b"), {})
