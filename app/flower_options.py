"""The Flower settings this service chooses, as the FLOWER_* variables Flower reads.

Flower can revoke tasks and shut workers down, and by default serves anyone who reaches its port.
So outside development it asks for HTTP basic auth: user `operator`, the operator's token as
password, unless FLOWER_BASIC_AUTH or FLOWER_AUTH choose otherwise. It keeps what it has seen
across restarts (persistent mode, in var/flower.db). An operator's own FLOWER_* variable always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from app.config import Settings
from app.setting_values import ConfigError

OPERATOR = "operator"


def flower_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The FLOWER_* variables to add to `environ` (none it already has)."""
    chosen = {
        "FLOWER_PERSISTENT": "true",
        "FLOWER_DB": str(Path("var/flower.db").absolute()),
        "FLOWER_STATE_SAVE_INTERVAL": "60000",  # milliseconds: a crash loses at most a minute
    }
    if settings.env != "development" and not (environ.get("FLOWER_BASIC_AUTH") or environ.get("FLOWER_AUTH")):
        if "," in settings.admin_token:
            # Flower splits FLOWER_BASIC_AUTH at commas, one user:password each.
            raise ConfigError("ORDERSAGA_ADMIN_TOKEN must not contain a comma to be Flower's password")
        chosen["FLOWER_BASIC_AUTH"] = f"{OPERATOR}:{settings.admin_token}"
    return {name: value for name, value in chosen.items() if name not in environ}
