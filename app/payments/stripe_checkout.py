"""The adapter for Stripe, through Checkout Sessions and the `stripe` SDK's `StripeClient`.

One payment of the shop is one Checkout Session (`cs_...`, the id the saga keeps). The session's
own status says whether the buyer paid; its PaymentIntent's latest charge says whether the money
went back. Notifications are read in `app.payments.stripe_events`.

The SDK's global `stripe.api_key` is never set: each instance holds its own `StripeClient`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote, urlsplit

import stripe

from app.payment_settings import StripeSettings
from app.payments.port import (
    DEFAULT_TIMEOUT,
    Notification,
    PaymentNotFound,
    PaymentStatus,
    ProviderError,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
)
from app.payments.stripe_events import read_event

# The saga retries every transient failure itself, and a retry inside the SDK would hold the
# worker for another (connect, read) each time; with our idempotency keys either would be safe.
DEFAULT_NETWORK_RETRIES = 0
# Stripe refuses a session that expires sooner than 30 minutes after its creation.
MIN_SESSION_SECONDS = 31 * 60
# The session is read with its PaymentIntent and that intent's latest charge, to see refunds.
EXPAND = ["payment_intent.latest_charge"]

# Answers that say "try again": no connection or no answer in time, throttling, Stripe's own
# 5xx (and 409 lock conflicts), an answer that is not JSON, and our own credentials refused (a
# configuration fault of the shop, retried rather than compensated as if the buyer had said no).
TRANSIENT_ERRORS = (
    stripe.APIConnectionError,
    stripe.RateLimitError,
    stripe.APIError,
    stripe.AuthenticationError,
    stripe.PermissionError,
)


class StripeProvider:
    """Build one per process, after any fork: it holds a pooled HTTP client."""

    name = "stripe"
    keyed_by_our_id = False

    def __init__(
        self,
        settings: StripeSettings,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        *,
        max_network_retries: int = DEFAULT_NETWORK_RETRIES,
    ) -> None:
        self._secrets = (settings.secret_key, settings.webhook_secret)
        self._webhook_secret = settings.webhook_secret
        self.timeout = timeout
        self._http = stripe.RequestsClient(timeout=timeout)
        self._client = stripe.StripeClient(
            settings.secret_key,
            base_addresses={"api": settings.api_base},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

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
        payment_id = idempotency_key
        params = _session_params(
            reference=reference,
            amount_cents=amount_cents,
            currency=currency,
            payment_id=payment_id,
            return_url=return_url(callback_url, reference),
        )
        params["expires_at"] = session_expiry(expires_at)
        session = self._call(
            "create session",
            lambda: self._client.v1.checkout.sessions.create(
                cast(Any, params), {"idempotency_key": f"create-{payment_id}"}
            ),
        )
        return session_payment(session, "create session")

    def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        return session_payment(self._retrieve(provider_payment_id), "get session")

    def void_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Expire the session, then read it: only what the read shows is reported."""
        session_id = provider_payment_id
        # 400 "Only Checkout Sessions with a status in ["open"] can be expired", without a code:
        # the session is complete or expired already, and the read below says which.
        with contextlib.suppress(ProviderRejected):
            self._call("expire session", lambda: self._client.v1.checkout.sessions.expire(session_id))
        payment = session_payment(self._retrieve(provider_payment_id), "void session")
        if payment.status in (PaymentStatus.VOIDED, PaymentStatus.FAILED):
            return payment
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
            raise ProviderRejected(
                f"stripe void session {provider_payment_id}: the buyer has paid",
                code="session_complete",
                status_now=payment.status,
            )
        # Still open (the expiry did not take) or complete with an asynchronous payment still
        # settling: it may yet be paid, so it is not voided; the saga asks again.
        raise ProviderUnavailable(f"stripe void session {provider_payment_id}: still {payment.status}")

    def refund_payment(self, provider_payment_id: str) -> ProviderPayment:
        session = self._retrieve(provider_payment_id)
        payment = session_payment(session, "refund session")
        if payment.status is PaymentStatus.REFUNDED:
            return payment
        if payment.status is not PaymentStatus.SUCCEEDED:
            raise ProviderRejected(
                f"stripe refund session {provider_payment_id}: not paid ({payment.status})",
                code="not_paid",
                status_now=payment.status,
            )
        intent_id, payment_id = _refund_subject(session, provider_payment_id)
        refund = self._call(
            "create refund",
            lambda: self._client.v1.refunds.create(
                {"payment_intent": intent_id, "metadata": {"payment_id": payment_id}},
                {"idempotency_key": f"refund-{payment_id}"},
            ),
        )
        if refund.get("status") in ("pending", "requires_action"):
            # The same key again replays the first answer, so the refund itself is read.
            refund_id = str(refund.get("id"))
            refund = self._call("get refund", lambda: self._client.v1.refunds.retrieve(refund_id))
        return _refunded(payment, refund, provider_payment_id)

    def read_notification(self, headers: Mapping[str, str], raw_body: bytes, now: float) -> Notification:
        return read_event(self._client, self._webhook_secret, headers, raw_body, now)

    def close(self) -> None:
        self._http.close()

    def _retrieve(self, provider_payment_id: str) -> dict[str, Any]:
        return self._call(
            "get session",
            lambda: self._client.v1.checkout.sessions.retrieve(provider_payment_id, {"expand": EXPAND}),
        )

    def _call(self, what: str, call: Callable[[], stripe.StripeObject]) -> dict[str, Any]:
        try:
            answer = call()
        except stripe.StripeError as error:
            raise self._translate(error, f"stripe {what}") from error
        return answer.to_dict()

    def _translate(self, error: stripe.StripeError, what: str) -> ProviderError:
        detail = f"{what}: {type(error).__name__}: {error.http_status or ''} {error.user_message or ''}"
        for secret in self._secrets:  # Stripe masks keys in its messages; make sure of it
            detail = detail.replace(secret, "[redacted]")
        status = error.http_status
        if isinstance(error, TRANSIENT_ERRORS) or (status is not None and status >= 500):
            return ProviderUnavailable(detail)
        if status == 404:
            return PaymentNotFound(detail)
        return ProviderRejected(detail, code=error.code, http_status=status)


def return_url(callback_url: str, reference: str) -> str:
    """Where Stripe sends the buyer back, paid or not: the order's page on the shop's origin."""
    parts = urlsplit(callback_url)
    return f"{parts.scheme}://{parts.netloc}/api/v1/orders/{quote(reference, safe='')}"


def session_expiry(expires_at: datetime) -> int:
    """The session's `expires_at`, unix seconds: 31 minutes past our deadline, since Stripe
    refuses a session that expires sooner than 30 minutes after its creation (the saga expires
    the session itself at the deadline). A function of the deadline alone, so that a retried
    create sends the same parameters under the same Idempotency-Key: Stripe refuses a key
    reused with other ones. (A deadline more than 23 h 29 min away would pass Stripe's 24-hour
    limit, and is refused.)"""
    return int(expires_at.timestamp()) + MIN_SESSION_SECONDS


def _session_params(
    *, reference: str, amount_cents: int, currency: str, payment_id: str, return_url: str
) -> dict[str, Any]:
    metadata = {"payment_id": payment_id, "order_id": reference}
    return {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency.lower(),
                    # Our amounts are integers in the currency's minor unit, which is what Stripe
                    # takes: cents for EUR, yen for the zero-decimal JPY (never multiplied).
                    "unit_amount": amount_cents,
                    "product_data": {"name": f"Order {reference}"},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": payment_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": return_url,
        "cancel_url": return_url,
    }


def session_status(session: Mapping[str, Any]) -> PaymentStatus:
    status, paid = session.get("status"), session.get("payment_status")
    if status == "expired":
        return PaymentStatus.VOIDED
    if status != "complete":
        return PaymentStatus.PENDING
    intent = session.get("payment_intent")
    intent = intent if isinstance(intent, Mapping) else {}
    if paid in ("paid", "no_payment_required"):
        charge = intent.get("latest_charge")
        refunded = isinstance(charge, Mapping) and charge.get("refunded") is True
        return PaymentStatus.REFUNDED if refunded else PaymentStatus.SUCCEEDED
    # Complete but unpaid: an asynchronous method (a bank debit) still settling, or failed,
    # in which case the intent is back to wanting a payment method.
    if intent.get("status") in ("requires_payment_method", "canceled"):
        return PaymentStatus.FAILED
    return PaymentStatus.PENDING


def session_payment(session: Mapping[str, Any], what: str) -> ProviderPayment:
    try:
        session_id, amount, currency = session["id"], session["amount_total"], session["currency"]
    except KeyError:
        raise ProviderUnavailable(f"stripe {what}: unreadable session") from None
    if not (isinstance(session_id, str) and _is_int(amount) and isinstance(currency, str)):
        raise ProviderUnavailable(f"stripe {what}: unreadable session")
    url = session.get("url")
    return ProviderPayment(
        id=session_id,
        status=session_status(session),
        amount_cents=amount,
        currency=currency.upper(),
        checkout_url=url if isinstance(url, str) else None,
    )


def _refund_subject(session: Mapping[str, Any], session_id: str) -> tuple[str, str]:
    """The PaymentIntent to refund, and our payment id (the refund's number is derived from it)."""
    intent = session.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, Mapping) else intent
    metadata = session.get("metadata")
    payment_id = (metadata.get("payment_id") if isinstance(metadata, Mapping) else None) or session.get(
        "client_reference_id"
    )
    if not (isinstance(intent_id, str) and isinstance(payment_id, str)):
        raise ProviderUnavailable(f"stripe refund session {session_id}: unreadable session")
    return intent_id, payment_id


def _refunded(payment: ProviderPayment, refund: Mapping[str, Any], session_id: str) -> ProviderPayment:
    status = refund.get("status")
    if status == "succeeded":
        return ProviderPayment(
            id=payment.id,
            status=PaymentStatus.REFUNDED,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            checkout_url=payment.checkout_url,
        )
    if status in ("failed", "canceled"):
        raise ProviderRejected(
            f"stripe refund session {session_id}: refund {status}",
            code=f"refund_{status}",
            status_now=PaymentStatus.SUCCEEDED,
        )
    raise ProviderUnavailable(f"stripe refund session {session_id}: refund still {status}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
