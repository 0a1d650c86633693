"""The saga engine: definitions, persisted saga state, orchestration and compensation order.

It arrives with the order saga (issue #3); it imports nothing of Flask, Celery or app/sandbox.
"""
