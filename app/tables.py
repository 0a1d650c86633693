"""Every table of a deployment, for Alembic, the tests and the processes: the shop's, the saga
engine's and the sandbox provider's (which only shares the database, never code paths, with the
shop). Importing this module registers every mapper, so relationships between them resolve."""

from app.models import coupons, flash_sales, goods, orders, outbox, payments, users, webhooks
from app.models.base import Base
from app.sandbox import models as sandbox_models
from sagas import models as saga_models

__all__ = [
    "Base",
    "coupons",
    "flash_sales",
    "goods",
    "orders",
    "outbox",
    "payments",
    "saga_models",
    "sandbox_models",
    "users",
    "webhooks",
]
