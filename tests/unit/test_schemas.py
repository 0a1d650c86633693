"""The JSON rules of the contract, at the schema level."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import pytest

from app.schemas.coupons import CouponCreateSchema
from app.schemas.goods import GoodsCreateSchema

GOOD = {"sku": "S", "name": "N", "price_cents": 1, "stock": 0}


@pytest.mark.parametrize("value", ["1", 1.5, 1.0, True, None, [1], {"a": 1}, 10**12 + 1, 0, -1])
def test_price_must_be_a_bounded_positive_json_integer(value: Any) -> None:
    with pytest.raises(ma.ValidationError) as error:
        GoodsCreateSchema().load({**GOOD, "price_cents": value})
    assert "price_cents" in error.value.messages


def test_bounds_are_inclusive() -> None:
    loaded = GoodsCreateSchema().load({**GOOD, "price_cents": 10**12, "stock": 10**9})
    assert (loaded["price_cents"], loaded["stock"]) == (10**12, 10**9)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ma.ValidationError) as error:
        GoodsCreateSchema().load({**GOOD, "colour": "red"})
    assert "colour" in error.value.messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-01T08:00:00+08:00", "2030-01-01T00:00:00Z"),
        ("2030-01-01T00:00:00.5Z", "2030-01-01T00:00:00.500000Z"),
    ],
)
def test_timestamps_need_an_offset_and_come_back_in_utc(text: str, expected: str) -> None:
    from app.timeutil import rfc3339

    loaded = CouponCreateSchema().load({"amount_off_cents": 1, "expires_at": text})
    assert rfc3339(loaded["expires_at"]) == expected
    with pytest.raises(ma.ValidationError):
        CouponCreateSchema().load({"amount_off_cents": 1, "expires_at": "2030-01-01T00:00:00"})
