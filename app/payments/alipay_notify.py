"""Alipay's asynchronous notifications (the POST to the `notify_url` given at precreate).

The body is `application/x-www-form-urlencoded` in utf-8 (the charset our requests ask for).
Alipay signs it inside the body, not in a header: RSA2 over the sorted `k=v&...` of every
field but `sign` and `sign_type`, with Alipay's key. So the body is split into its fields (the
values Alipay signed are the decoded ones), strictly, and nothing in it is looked at until the
SDK has verified that signature.

Replays: a notification carries `notify_time` (Beijing time, when it was sent). Alipay retries
an unanswered one for about 25 hours (4 min, 10 min, 10 min, 1 h, 2 h, 6 h, 15 h), each time
re-sent and re-signed under the same `notify_id`; one sent more than REPLAY_WINDOW seconds from
`now` is refused as stale, and the shop de-duplicates by `notify_id` (the event id) downstream.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from alipay.exceptions import AliPayException

from app.payments.alipay_wire import CURRENCY, cents, epoch_of
from app.payments.port import Notification, NotificationKind, NotificationMismatch, NotificationRefused

REPLAY_WINDOW = 300.0
MAX_FIELDS = 200
SIGN_TYPE = "RSA2"

PAID = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
CLOSED = "TRADE_CLOSED"


def read_notification(verifier: Any, app_id: str, raw_body: bytes, now: float) -> Notification:
    """`verifier` is the adapter's `AliPay` client (it holds Alipay's public key)."""
    fields = _fields(raw_body)
    _verify(verifier, fields)
    sent = epoch_of(fields.get("notify_time"))
    if sent is None:
        raise NotificationRefused("alipay notification: no readable notify_time")
    if abs(now - sent) > REPLAY_WINDOW:
        raise NotificationRefused("alipay notification: notify_time outside the replay window")
    if fields.get("app_id") != app_id:
        raise NotificationMismatch("alipay notification for another app_id")
    return _notification(fields)


def _fields(raw_body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            raw_body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError too
        raise NotificationRefused("alipay notification: not a utf-8 form body") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise NotificationRefused("alipay notification: a field given twice")
    if fields.get("charset", "utf-8").lower() != "utf-8":
        raise NotificationRefused("alipay notification: not in utf-8")
    return fields


def _verify(verifier: Any, fields: dict[str, str]) -> None:
    signature = fields.get("sign")
    if not signature or fields.get("sign_type") != SIGN_TYPE:
        raise NotificationRefused("alipay notification: no RSA2 signature")
    signed = {key: value for key, value in fields.items() if key not in ("sign", "sign_type")}
    try:
        genuine = bool(verifier.verify(signed, signature))
    except (ValueError, TypeError, AliPayException):  # not base64, not the key's length, ...
        genuine = False
    if not genuine:
        raise NotificationRefused("alipay notification: the signature does not verify")


def _notification(fields: dict[str, str]) -> Notification:
    event_id, out_trade_no = fields.get("notify_id"), fields.get("out_trade_no")
    total = cents(fields.get("total_amount"))
    if not event_id or not out_trade_no or total is None:
        raise NotificationRefused("alipay notification: no notify_id, out_trade_no or total_amount")
    return Notification(
        event_id=event_id,
        kind=_kind(fields, total),
        payment_id=out_trade_no,
        # create_payment answers with out_trade_no as the payment's id: Alipay's own trade_no
        # does not exist before the buyer scans the QR code.
        provider_payment_id=out_trade_no,
        amount_cents=total,
        currency=CURRENCY,
    )


def _kind(fields: dict[str, str], total: int) -> NotificationKind:
    status = fields.get("trade_status")
    if "refund_fee" in fields or "gmt_refund" in fields:
        # A refund notice: `refund_fee` is the trade's total refunded so far. After a full
        # refund the trade is TRADE_CLOSED; after a partial one it stays TRADE_SUCCESS.
        refunded = cents(fields.get("refund_fee"))
        if "refund_fee" in fields and refunded is None:
            raise NotificationRefused("alipay notification: unreadable refund_fee")
        if status in PAID or status == CLOSED:
            return NotificationKind.REFUNDED if refunded == total else NotificationKind.IGNORED
        return NotificationKind.IGNORED
    if status in PAID:
        return NotificationKind.SUCCEEDED
    # Closed unpaid is no failed payment: either the shop closed it (a cancellation, or the
    # timeout, which decide the order themselves) or Alipay did at `time_expire`, which is the
    # payment's deadline, where the shop's own timeout asks and cancels (payment_timeout).
    # WAIT_BUYER_PAY, and any status we do not act on, change nothing either.
    return NotificationKind.IGNORED
