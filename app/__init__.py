"""ordersaga: an order-and-payment service that runs each order as a saga of Celery tasks.

Importing this package loads nothing: a service or the saga engine imports neither Flask nor
Celery. `app.bootstrap` builds a process's dependencies; `app.web.create_app` is the Flask app.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """`from app import create_app` keeps working, loading Flask only when it is asked for."""
    if name == "create_app":
        from app.web import create_app  # loaded on demand, so that `import app` stays light

        return create_app
    raise AttributeError(name)
