"""The sandbox's HTTP side, registered on the Flask app that serves it."""

from __future__ import annotations

from flask import Flask

from app.config import Settings
from app.db import Database
from app.sandbox import api, checkout
from app.sandbox.deps import EXTENSION, SandboxDeps


def init_sandbox(app: Flask, db: Database, settings: Settings) -> None:
    app.extensions[EXTENSION] = SandboxDeps(db, settings)
    app.register_blueprint(api.blp)
    app.register_blueprint(checkout.blp)
