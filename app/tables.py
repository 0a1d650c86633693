"""Every table of a deployment, for Alembic and the tests: the shop's, the saga engine's and the
sandbox provider's (which only shares the database, never code paths, with the shop)."""

from app.models import Base
from app.sandbox import models as sandbox_models
from sagas import models as saga_models

__all__ = ["Base", "saga_models", "sandbox_models"]
