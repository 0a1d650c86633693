"""Celery tasks: thin adapters that call service functions. Each module's `register` defines its
tasks on the Celery app, bound to the runtime the composition root built."""
