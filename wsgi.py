"""The WSGI app for gunicorn: `gunicorn wsgi:app`."""

from app.web import create_app

app = create_app()
