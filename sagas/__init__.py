"""The saga engine: definitions, persisted saga state, orchestration and compensation order.

It imports nothing of Flask, Celery or app/sandbox.
"""
