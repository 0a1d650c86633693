"""The WSGI app for gunicorn: `gunicorn wsgi:app`.

The API hands the messages a request commits to a relay thread rather than sending them before
it answers (app/relay_thread.py); workers and beat, which have no buyer waiting, send their own.
"""

from app import tracing
from app.web import create_app, relay_in_background

app = create_app()
relay_in_background(app)
tracing.start("ordersaga-api", app)  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
