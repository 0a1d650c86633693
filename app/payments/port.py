"""The shop's port to a payment provider: what the saga may ask of any provider.

Adapters translate a provider's own words into these, so the saga reasons about one vocabulary
(the contract's payment statuses) and one classification of failures:

- `ProviderUnavailable`: transient (no connection, timeout, 5xx, 429); the saga retries it.
- `ProviderRejected`: the provider understood and said no (409 "not pending", say); retrying
  the same call cannot help, and `status_now` says what the payment is instead when known.
- `PaymentNotFound`: the provider has no such payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class PaymentStatus(StrEnum):
    """The contract's payment statuses; equal to their plain strings ("PENDING", ...)."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


@dataclass(frozen=True)
class ProviderPayment:
    id: str
    status: PaymentStatus
    amount_cents: int
    currency: str
    checkout_url: str | None = None


class ProviderError(Exception):
    """Anything a provider call can end in other than an answer."""


class ProviderUnavailable(ProviderError):
    """Transient: the same call may well succeed later."""


class ProviderRejected(ProviderError):
    """A definite business refusal; `status_now` is the payment's status when the provider said."""

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        status_now: PaymentStatus | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.http_status = http_status
        self.status_now = status_now


class PaymentNotFound(ProviderError):
    """The provider does not know this payment id."""


class PaymentProvider(Protocol):
    name: str

    def create_payment(
        self, *, reference: str, amount_cents: int, currency: str, callback_url: str, idempotency_key: str
    ) -> ProviderPayment:
        """Create a pending payment; the same `idempotency_key` again returns the same payment."""
        ...

    def get_payment(self, provider_payment_id: str) -> ProviderPayment: ...

    def void_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Cancel an unpaid payment; a paid one raises ProviderRejected(status_now=SUCCEEDED)."""
        ...

    def refund_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Return the money of a succeeded payment."""
        ...
