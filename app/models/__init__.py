"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from app.models.base import Base
from app.models.coupons import Coupon
from app.models.goods import Goods
from app.models.users import User

__all__ = ["Base", "Coupon", "Goods", "User"]
