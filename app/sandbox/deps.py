"""What the sandbox's views need, kept on the Flask app that serves them: the database it shares
with the shop (its own tables only) and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app

from app.config import Settings
from app.db import Database

EXTENSION = "ordersaga.sandbox"


@dataclass(frozen=True)
class SandboxDeps:
    db: Database
    settings: Settings


def deps() -> SandboxDeps:
    return cast(SandboxDeps, current_app.extensions[EXTENSION])
