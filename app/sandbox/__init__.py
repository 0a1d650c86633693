"""The sandbox payment provider: a stand-in third party served by the same app under /sandbox.

It knows nothing of orders and imports nothing of the shop; the shop reaches it over HTTP only.
"""

from __future__ import annotations

from flask import Flask


def init_sandbox(app: Flask) -> None:
    """Register the sandbox's blueprint(s) on `app`."""
    from app.sandbox import api, checkout

    app.register_blueprint(api.blp)
    app.register_blueprint(checkout.blp)
