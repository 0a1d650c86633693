"""Celery tasks: thin adapters that call service functions inside the Flask app context."""
