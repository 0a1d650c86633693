"""An order read's body, built directly for the hot reads, is what OrderSchema dumps."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from app.schemas.orders import OrderSchema, view_body
from app.services.order_reads import ItemView, OrderView, PaymentView, SagaView

ids = st.text(max_size=32)
maybe_ids = st.none() | ids
cents = st.integers(min_value=0, max_value=10**12)
times = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC))

orders = st.builds(
    OrderView,
    id=ids,
    user_id=ids,
    status=ids,
    total_cents=cents,
    discount_cents=cents,
    payable_cents=cents,
    coupon_id=maybe_ids,
    flash_sale_id=maybe_ids,
    created_at=times,
    updated_at=times,
    payment_deadline=st.none() | times,
    cancel_reason=maybe_ids,
    items=st.lists(st.builds(ItemView, goods_id=ids, quantity=st.integers(1, 100), unit_price_cents=cents)),
    # A payment the provider has not created yet (no provider id) is shown as none.
    payment=st.none()
    | st.builds(
        PaymentView,
        id=ids,
        provider=ids,
        provider_payment_id=maybe_ids,
        status=ids,
        amount_cents=cents,
        checkout_url=maybe_ids,
    ),
    saga=st.none() | st.builds(SagaView, id=ids, status=ids),
)


@given(orders)
def test_an_order_reads_body_is_what_the_schema_dumps(order: OrderView) -> None:
    assert view_body(order) == OrderSchema().dump(order)
