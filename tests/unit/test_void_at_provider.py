"""Voiding a payment whose creation the shop never saw answered, and one the provider lacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.payments import Providers
from app.payments.port import PaymentNotFound, PaymentStatus, ProviderPayment, ProviderRejected
from app.services.payments import PaymentRequest, void_at_provider
from tests.support.fakes import FakeProvider

REQUEST = PaymentRequest(
    payment_id="pmt_1",
    order_id="ord_1",
    provider="sandbox",
    amount_cents=500,
    currency="CNY",
    provider_payment_id=None,
    expires_at=datetime.now(UTC) + timedelta(minutes=15),
)


def test_a_provider_that_names_payments_by_our_id_is_asked_by_it_not_created_again() -> None:
    provider = FakeProvider(keyed_by_our_id=True)
    provider.payments["pmt_1"] = ProviderPayment("pmt_1", PaymentStatus.PENDING, 500, "CNY")
    assert void_at_provider(Providers([provider]), REQUEST, "http://shop") == PaymentStatus.VOIDED
    assert provider.calls == ["void pmt_1"]


def test_elsewhere_the_same_idempotency_key_finds_the_payment_the_first_call_made() -> None:
    provider = FakeProvider()
    made = provider.create_payment(
        reference="ord_1",
        amount_cents=500,
        currency="CNY",
        callback_url="http://shop/hook",
        idempotency_key="pmt_1",
        expires_at=REQUEST.expires_at,
    )
    assert void_at_provider(Providers([provider]), REQUEST, "http://shop") == PaymentStatus.VOIDED
    assert provider.calls[-1] == f"void {made.id}" and len(provider.payments) == 1


def test_a_payment_the_provider_refuses_to_create_now_was_never_made_and_needs_no_void() -> None:
    provider = FakeProvider()

    def too_late(**_: Any) -> ProviderPayment:
        raise ProviderRejected("expires_at must be at least 30 minutes from now", http_status=400)

    provider.create_payment = too_late  # type: ignore[method-assign]
    assert void_at_provider(Providers([provider]), REQUEST, "http://shop") == PaymentStatus.VOIDED


def test_a_payment_the_provider_does_not_have_needs_no_void() -> None:
    provider = FakeProvider()

    def unknown(provider_payment_id: str) -> ProviderPayment:
        raise PaymentNotFound(provider_payment_id)

    provider.void_payment = unknown  # type: ignore[method-assign]
    known = replace(REQUEST, provider_payment_id="fake_9")
    assert void_at_provider(Providers([provider]), known, "http://shop") == PaymentStatus.VOIDED
