"""An in-memory payment provider for tests that exercise the engine in-process."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from app.payments.port import PaymentStatus, ProviderPayment, ProviderRejected


@dataclass
class FakeProvider:
    name: str = "sandbox"
    keyed_by_our_id: bool = False
    payments: dict[str, ProviderPayment] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def create_payment(
        self,
        *,
        reference: str,
        amount_cents: int,
        currency: str,
        callback_url: str,
        idempotency_key: str,
        expires_at: datetime,
    ) -> ProviderPayment:
        self.calls.append(f"create {idempotency_key}")
        if idempotency_key in self.by_key:
            return self.payments[self.by_key[idempotency_key]]
        payment_id = f"fake_{next(self._ids)}"
        payment = ProviderPayment(
            payment_id, PaymentStatus.PENDING, amount_cents, currency, f"http://fake/{payment_id}"
        )
        self.payments[payment_id] = payment
        self.by_key[idempotency_key] = payment_id
        return payment

    def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        return self.payments[provider_payment_id]

    def _move(self, provider_payment_id: str, expected: PaymentStatus, new: PaymentStatus) -> ProviderPayment:
        payment = self.payments[provider_payment_id]
        if payment.status != expected:
            raise ProviderRejected("not allowed", http_status=409, status_now=payment.status)
        moved = ProviderPayment(payment.id, new, payment.amount_cents, payment.currency, payment.checkout_url)
        self.payments[provider_payment_id] = moved
        return moved

    def void_payment(self, provider_payment_id: str) -> ProviderPayment:
        self.calls.append(f"void {provider_payment_id}")
        return self._move(provider_payment_id, PaymentStatus.PENDING, PaymentStatus.VOIDED)

    def refund_payment(self, provider_payment_id: str) -> ProviderPayment:
        self.calls.append(f"refund {provider_payment_id}")
        return self._move(provider_payment_id, PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
