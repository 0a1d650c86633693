"""The shop's SQLAlchemy models, one module per aggregate.

Import a model from its own module (`app.models.orders`); `app.tables` imports them all, with the
saga engine's and the sandbox's tables, for Alembic and for whatever needs every mapper.
"""
