"""Where a view finds the process's runtime: on the Flask app that serves it, as Flask's own
extensions keep their state. Only the HTTP layer reads it; everything below is handed what it
needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

if TYPE_CHECKING:
    from app.bootstrap import Runtime

EXTENSION = "ordersaga"


def runtime(app: Flask | None = None) -> Runtime:
    return cast("Runtime", (app or current_app).extensions[EXTENSION])
