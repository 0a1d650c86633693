"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from app.models.base import Base
from app.models.coupons import Coupon
from app.models.flash_sales import FlashSale, FlashSaleBuyer
from app.models.goods import Goods
from app.models.orders import IdempotencyKey, Order, OrderItem
from app.models.outbox import OutboxMessage
from app.models.payments import Payment
from app.models.users import User
from app.models.webhooks import WebhookEvent
from sagas.models import Saga, SagaStep  # the engine's tables; Order.saga refers to Saga

__all__ = [
    "Base",
    "Coupon",
    "FlashSale",
    "FlashSaleBuyer",
    "Goods",
    "IdempotencyKey",
    "Order",
    "OrderItem",
    "OutboxMessage",
    "Payment",
    "Saga",
    "SagaStep",
    "User",
    "WebhookEvent",
]
