"""Domain operations. Nothing here imports Flask or Celery: views and tasks are thin adapters."""
