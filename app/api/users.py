"""Users (operator) and the caller's own account."""

from __future__ import annotations

from typing import Any

from app.api.auth import current_user_id, operator_required, user_required
from app.api.blueprint import Blueprint
from app.api.flash_sales import cache_token_hash
from app.extension import runtime
from app.schemas.common import PageQuerySchema
from app.schemas.coupons import CouponCreateSchema, CouponPageSchema, CouponSchema
from app.schemas.users import MeSchema, NewUserSchema, UserCreateSchema, UserSchema
from app.services import coupons, users

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="Users and their coupons")


@blp.post("/users")
@operator_required
@blp.arguments(UserCreateSchema)
@blp.response(201, NewUserSchema)
def create_user(data: dict[str, Any]) -> dict[str, Any]:
    with runtime().db.uow() as uow:
        created = users.create_user(uow, data["name"], data["email"])
    user = created.user
    cache_token_hash(runtime(), user.id, user.token_hash)  # the flash-sale path needs no SQL for it
    fields = ("id", "name", "email", "points", "created_at")
    return {**{name: getattr(user, name) for name in fields}, "token": created.token}


@blp.get("/users/<user_id>")
@operator_required
@blp.response(200, UserSchema)
def get_user(user_id: str) -> Any:
    with runtime().db.uow() as uow:
        return users.get_user(uow, user_id)


@blp.get("/me")
@user_required
@blp.response(200, MeSchema)
def me() -> Any:
    with runtime().db.uow() as uow:
        return users.get_user(uow, current_user_id())


@blp.post("/users/<user_id>/coupons")
@operator_required
@blp.arguments(CouponCreateSchema)
@blp.response(201, CouponSchema)
def create_coupon(data: dict[str, Any], user_id: str) -> Any:
    with runtime().db.uow() as uow:
        return coupons.create_coupon(
            uow, user_id, data["amount_off_cents"], data["min_order_cents"], data["expires_at"]
        )


@blp.get("/users/<user_id>/coupons")
@operator_required
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, CouponPageSchema)
def list_user_coupons(query: dict[str, Any], user_id: str) -> Any:
    with runtime().db.uow() as uow:
        users.get_user(uow, user_id)
        return coupons.list_user_coupons(uow, user_id, query["limit"], query["cursor"])


@blp.get("/me/coupons")
@user_required
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, CouponPageSchema)
def my_coupons(query: dict[str, Any]) -> Any:
    with runtime().db.uow() as uow:
        return coupons.list_user_coupons(uow, current_user_id(), query["limit"], query["cursor"])
