"""Stripe's webhook events, verified over the raw body and read into the shop's Notification.

Stripe signs `<t>.<raw body>` with HMAC-SHA256 under the endpoint's secret (`whsec_...`) and
sends `Stripe-Signature: t=<unix seconds>,v1=<hex>`. The SDK checks the signature and that `t`
is not older than the replay window by its own clock; `t` is also held to the caller's `now`,
both ways, so a timestamp from the future is no fresher than one from the past.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import stripe

from app.payments.port import (
    Notification,
    NotificationKind,
    NotificationMismatch,
    NotificationRefused,
)

REPLAY_WINDOW = 300  # seconds
SIGNATURE_HEADER = "Stripe-Signature"

PAID = ("paid", "no_payment_required")
SESSION_KINDS = {
    "checkout.session.async_payment_succeeded": NotificationKind.SUCCEEDED,
    "checkout.session.async_payment_failed": NotificationKind.FAILED,
    # Expired is not a failed payment: either the shop expired the session itself (voiding it on
    # a cancellation or the payment timeout, which already decides the order) or Stripe did, at
    # least 31 minutes after the shop's own deadline. Recording it as FAILED would hide VOIDED.
    "checkout.session.expired": NotificationKind.IGNORED,
}
REFUND_EVENTS = ("refund.created", "refund.updated")


def read_event(
    client: stripe.StripeClient, secret: str, headers: Mapping[str, str], raw_body: bytes, now: float
) -> Notification:
    event = _verified_event(client, secret, headers, raw_body, now)
    try:
        event_id, event_type, obj = event["id"], event["type"], event["data"]["object"]
    except (KeyError, TypeError):
        raise NotificationRefused("stripe: an event without id, type or object") from None
    if not (isinstance(event_id, str) and isinstance(event_type, str) and isinstance(obj, Mapping)):
        raise NotificationRefused("stripe: an event without id, type or object")
    if event.get("account"):
        # A Connect event: it happened on another Stripe account, not on the shop's.
        raise NotificationMismatch(f"stripe: event {event_id} is for another account")
    reader = _READERS.get(event_type)
    if reader is None:
        return _ignored(event_id)
    return reader(event_id, event_type, obj)


def _verified_event(
    client: stripe.StripeClient, secret: str, headers: Mapping[str, str], raw_body: bytes, now: float
) -> dict[str, Any]:
    header = headers.get(SIGNATURE_HEADER)
    if not header:
        raise NotificationRefused(f"stripe: no {SIGNATURE_HEADER} header")
    try:
        # The raw bytes, as received: the signature covers exactly those.
        event = client.construct_event(raw_body, header, secret, tolerance=REPLAY_WINDOW)
    except stripe.SignatureVerificationError as error:
        raise NotificationRefused(f"stripe: {error.user_message}") from None
    except (ValueError, TypeError, AttributeError, KeyError):
        # Not UTF-8, not JSON, not an event object: nothing a signature makes readable.
        raise NotificationRefused("stripe: an unreadable event body") from None
    timestamp = _timestamp(header)
    if timestamp is None or abs(now - timestamp) > REPLAY_WINDOW:
        raise NotificationRefused("stripe: the signature's timestamp is outside the replay window")
    return event.to_dict()


def _timestamp(header: str) -> int | None:
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _from_session(event_id: str, event_type: str, session: Mapping[str, Any]) -> Notification:
    if event_type == "checkout.session.completed":
        # Completed unpaid is a bank debit still settling: not a payment (yet).
        paid = session.get("payment_status") in PAID
        kind = NotificationKind.SUCCEEDED if paid else NotificationKind.IGNORED
    else:
        kind = SESSION_KINDS[event_type]
    session_id = session.get("id")
    payment_id = _payment_id(session) or _str(session.get("client_reference_id"))
    return _notification(
        event_id,
        kind,
        session,
        payment_id=payment_id,
        provider_payment_id=session_id if isinstance(session_id, str) else None,
        amount_key="amount_total",
    )


def _from_intent(event_id: str, event_type: str, intent: Mapping[str, Any]) -> Notification:
    return _notification(event_id, NotificationKind.FAILED, intent, payment_id=_payment_id(intent))


def _from_charge(event_id: str, event_type: str, charge: Mapping[str, Any]) -> Notification:
    # `refunded` is true only once the whole amount is refunded; a partial one is not ours.
    kind = NotificationKind.REFUNDED if charge.get("refunded") is True else NotificationKind.IGNORED
    return _notification(event_id, kind, charge, payment_id=_payment_id(charge))


def _from_refund(event_id: str, event_type: str, refund: Mapping[str, Any]) -> Notification:
    # The refunds the shop makes carry `metadata.payment_id`; only a succeeded one is final.
    kind = NotificationKind.REFUNDED if refund.get("status") == "succeeded" else NotificationKind.IGNORED
    return _notification(event_id, kind, refund, payment_id=_payment_id(refund))


_READERS: dict[str, Callable[[str, str, Mapping[str, Any]], Notification]] = {
    "checkout.session.completed": _from_session,
    **dict.fromkeys(SESSION_KINDS, _from_session),
    "payment_intent.payment_failed": _from_intent,
    "charge.refunded": _from_charge,
    **dict.fromkeys(REFUND_EVENTS, _from_refund),
}


def _notification(
    event_id: str,
    kind: NotificationKind,
    obj: Mapping[str, Any],
    *,
    payment_id: str | None,
    provider_payment_id: str | None = None,
    amount_key: str = "amount",
) -> Notification:
    if payment_id is None:
        # Not one of the shop's payments (no metadata of ours): nothing to act on.
        return _ignored(event_id)
    amount, currency = obj.get(amount_key), obj.get("currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
        raise NotificationRefused(f"stripe: event {event_id} has no readable amount or currency")
    return Notification(
        event_id=event_id,
        kind=kind,
        payment_id=payment_id,
        provider_payment_id=provider_payment_id,
        amount_cents=amount,  # already in the currency's minor unit, as Stripe counts it
        currency=currency.upper(),
    )


def _ignored(event_id: str) -> Notification:
    return Notification(
        event_id=event_id,
        kind=NotificationKind.IGNORED,
        payment_id=None,
        provider_payment_id=None,
        amount_cents=None,
        currency=None,
    )


def _payment_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return _str(metadata.get("payment_id")) if isinstance(metadata, Mapping) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
