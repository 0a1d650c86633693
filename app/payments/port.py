"""The shop's port to a payment provider: what the saga may ask of any provider.

Adapters translate a provider's own words into these, so the saga reasons about one vocabulary
(the contract's payment statuses) and one classification of failures:

- `ProviderUnavailable`: transient (no connection, timeout, 5xx, 429); the saga retries it.
- `ProviderRejected`: the provider understood and said no (409 "not pending", say); retrying
  the same call cannot help, and `status_now` says what the payment is instead when known.
- `PaymentNotFound`: the provider has no such payment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

# (connect, read) seconds for every provider call: a provider that hangs must not hold a saga
# worker for long.
DEFAULT_TIMEOUT = (3.05, 10.0)

# HTTP answers worth retrying: the provider is overloaded, restarting or asks us to slow down
# (408, 429, 5xx); or our own credentials were refused (401, 403), a configuration fault of the
# shop rather than the buyer's refusal, so it is retried (and, once retries run out, left FAILED
# for an operator) rather than compensated as if the payment had been declined.
RETRIED_STATUSES = frozenset({401, 403, 408, 429})


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in RETRIED_STATUSES


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


class NotificationRefused(ProviderError):
    """A notification that is not proven to come from the provider now: a missing or wrong
    signature, a timestamp outside the replay window, an unknown key serial, or a body that a
    valid signature does not cover. Nothing in it is acted on."""


class NotificationMismatch(ProviderError):
    """A genuine notification that is not for this merchant or app: nothing in it is acted on."""


class NotificationKind(StrEnum):
    """What a notification means to the shop; the values are the sandbox's event types."""

    SUCCEEDED = "payment.succeeded"
    FAILED = "payment.failed"
    REFUNDED = "refund.succeeded"
    # Verified, but nothing the shop acts on (a session completed unpaid, a refund not yet
    # final): answered as received, so the provider stops sending it.
    IGNORED = "ignored"


@dataclass(frozen=True)
class Notification:
    """A verified notification in the shop's words.

    `payment_id` is the shop's own payment id where the provider echoes it (Alipay's and
    WeChat Pay's `out_trade_no`, Stripe's `metadata.payment_id`); `provider_payment_id` is the
    provider's id where the shop looks payments up by it (the sandbox)."""

    event_id: str
    kind: NotificationKind
    payment_id: str | None
    provider_payment_id: str | None
    amount_cents: int | None
    currency: str | None


class PaymentProvider(Protocol):
    name: str
    # Whether the provider names a payment by the shop's own payment id (its merchant order
    # number, `out_trade_no`): then a payment can be voided without the answer to its creation.
    keyed_by_our_id: bool

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
        """Create a pending payment; the same `idempotency_key` again returns the same payment.
        `idempotency_key` is the shop's payment id; `expires_at` the payment deadline, which a
        provider that can expire payments itself is told."""
        ...

    def get_payment(self, provider_payment_id: str) -> ProviderPayment: ...

    def void_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Cancel an unpaid payment; a paid one raises ProviderRejected(status_now=SUCCEEDED)."""
        ...

    def refund_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Return the money of a succeeded payment. Returns only once the refund is final;
        one still in progress at the provider raises ProviderUnavailable, so it is asked again
        (with the same refund request number) later."""
        ...


class NotificationReader(Protocol):
    """What a provider's webhook needs: verify the raw body, then read it."""

    name: str

    def read_notification(self, headers: Mapping[str, str], raw_body: bytes, now: float) -> Notification:
        """Raises NotificationRefused or NotificationMismatch; never acts on anything."""
        ...
