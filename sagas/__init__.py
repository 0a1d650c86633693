"""The generic saga engine: definitions, persisted saga state, orchestration and compensation.

It knows steps, not what a saga is about, and imports nothing of Flask, Celery, the shop's
services or app/sandbox. The order saga is one definition, in app/services/order_saga.py.
"""
