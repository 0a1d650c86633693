"""A single coupon, for its owner or the operator."""

from __future__ import annotations

from typing import Any

from app.api.auth import current_principal, login_required
from app.api.blueprint import Blueprint
from app.extension import runtime
from app.schemas.coupons import CouponSchema
from app.services import coupons

blp = Blueprint("coupons", __name__, url_prefix="/api/v1/coupons", description="Coupons")


@blp.get("/<coupon_id>")
@login_required
@blp.response(200, CouponSchema)
def get_coupon(coupon_id: str) -> Any:
    with runtime().db.uow() as uow:
        return coupons.get_coupon(uow, coupon_id, owner_id=current_principal().user_id)
