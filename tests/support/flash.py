"""Flash sales over HTTP, for the tests that run the whole stack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.stack import Stack


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sale(
    stack: Stack,
    quantity: int,
    *,
    limit: int = 1,
    stock: int | None = None,
    starts_in: float = -60,
    lasts: float = 3600,
) -> dict[str, Any]:
    goods = stack.goods(stock=stock if stock is not None else quantity)
    now = datetime.now(UTC)
    body = {
        "goods_id": goods["id"],
        "price_cents": 500,
        "quantity": quantity,
        "per_user_limit": limit,
        "starts_at": _iso(now + timedelta(seconds=starts_in)),
        "ends_at": _iso(now + timedelta(seconds=starts_in + lasts)),
    }
    created = stack.ok("POST", "/api/v1/flash-sales", json=body)
    created["goods"] = goods
    return created


def buy(stack: Stack, flash: dict[str, Any], user: dict[str, Any], quantity: int = 1) -> Any:
    return stack.call(
        "POST", f"/api/v1/flash-sales/{flash['id']}/purchase", user["token"], json={"quantity": quantity}
    )


def first_steps(stack: Stack, flash: dict[str, Any]) -> list[Any]:
    """Per winner of the sale, earliest turn first: its saga's `not_before` (its turn) and when
    its first step (reserve_stock) started."""
    return stack.sql(
        """SELECT s.not_before, step.started_at FROM sagas s
           JOIN orders o ON o.id = s.subject_id
           JOIN saga_steps step ON step.saga_id = s.id AND step.name = 'reserve_stock'
                                AND step.kind = 'action'
           WHERE o.flash_sale_id = :sale ORDER BY s.not_before""",
        sale=flash["id"],
    )
