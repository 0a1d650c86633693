"""Reading WeChat Pay's notifications (支付通知 and 退款结果通知) into the shop's words.

The headers are checked first (key serial, WeChat's signature probe, the replay window); then
the SDK's `WeChatPay.callback` verifies the signature over the raw body with WeChat Pay's key
and decrypts the resource with the APIv3 key. Only then is anything of the body read.

WeChat Pay sends no notification for a failed payment (PAYERROR): that is learnt by querying
the order, so no notification here ever reads as FAILED.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay
from wechatpayv3.utils import rsa_verify

from app.payments.port import Notification, NotificationKind, NotificationMismatch, NotificationRefused
from app.payments.wechatpay_wire import SIGNATURE_TYPE

REPLAY_WINDOW_SECONDS = 300
# The prefix of the signature WeChat Pay puts on its probes of a merchant's signature checks.
SIGNATURE_PROBE = "WECHATPAY/SIGNTEST/"
TIMESTAMP = re.compile(r"[0-9]{1,12}")
HEADERS = ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial")


class WechatpayNotifications:
    def __init__(
        self, client: WeChatPay, platform_key: rsa.RSAPublicKey, *, mchid: str, appid: str, public_key_id: str
    ) -> None:
        self.client = client
        self.platform_key = platform_key
        self.mchid = mchid
        self.appid = appid
        self.public_key_id = public_key_id

    def read(self, headers: Mapping[str, str], raw_body: bytes, now: float) -> Notification:
        checked = self._checked_headers(headers, now)
        data = self._verified(checked, raw_body)
        event_type, resource = data.get("event_type"), data.get("resource")
        event_id = data.get("id")
        if not (isinstance(event_type, str) and isinstance(event_id, str) and isinstance(resource, dict)):
            raise NotificationRefused("wechatpay notification: no id, event_type or resource")
        self._check_ours(event_type, resource)
        kind = _kind(event_type, resource)
        out_trade_no = resource.get("out_trade_no")
        payment_id = out_trade_no if isinstance(out_trade_no, str) else None
        amount_cents, currency = _amount(kind, resource)
        return Notification(
            event_id=event_id,
            kind=kind,
            payment_id=payment_id,
            # create_payment's ProviderPayment.id is the out_trade_no itself.
            provider_payment_id=payment_id,
            amount_cents=amount_cents,
            currency=currency,
        )

    def _checked_headers(self, headers: Mapping[str, str], now: float) -> dict[str, str]:
        """The signature headers, under the names the SDK reads, once they pass the checks the
        SDK does not make. The serial is checked here, so the SDK never looks for (and never
        downloads) a certificate for an unknown one."""
        values = {name: headers.get(name) or "" for name in HEADERS}
        if not all(values.values()):
            raise NotificationRefused("wechatpay notification: signature headers missing")
        if values["Wechatpay-Signature"].startswith(SIGNATURE_PROBE):
            raise NotificationRefused("wechatpay notification: WeChat Pay's signature probe")
        if values["Wechatpay-Serial"].upper() != self.public_key_id.upper():
            raise NotificationRefused(
                f"wechatpay notification: unknown key serial {values['Wechatpay-Serial'][:64]!r}"
            )
        signature_type = headers.get("Wechatpay-Signature-Type") or SIGNATURE_TYPE
        if signature_type != SIGNATURE_TYPE:
            raise NotificationRefused(f"wechatpay notification: signature type {signature_type[:40]!r}")
        # ASCII digits, and few: int() takes full-width digits, and a 400-digit stamp overflows
        # the float below.
        if not TIMESTAMP.fullmatch(values["Wechatpay-Timestamp"]):
            raise NotificationRefused("wechatpay notification: unreadable timestamp")
        timestamp = int(values["Wechatpay-Timestamp"])
        if abs(now - timestamp) > REPLAY_WINDOW_SECONDS:
            raise NotificationRefused("wechatpay notification: timestamp outside the replay window")
        values["Wechatpay-Serial"] = self.public_key_id
        values["Wechatpay-Signature-Type"] = signature_type
        return values

    def _verified(self, headers: dict[str, str], raw_body: bytes) -> dict[str, Any]:
        try:
            text = raw_body.decode("utf-8")
        except UnicodeDecodeError:
            raise NotificationRefused("wechatpay notification: body is not UTF-8") from None
        # Checked here first only to tell a bad signature apart in the refusal; callback()
        # checks it again, over the same bytes, before it decrypts.
        signature, timestamp, nonce = (headers[name] for name in HEADERS[:3])
        if not rsa_verify(timestamp, nonce, text, signature, self.platform_key):
            raise NotificationRefused("wechatpay notification: signature does not verify")
        try:
            data = self.client.callback(headers, text)
        # The SDK raises bare Exceptions (an unknown algorithm) and lets JSON, base64 and
        # attribute errors of a signed but malformed body through: all of them mean "refused".
        except Exception as error:
            raise NotificationRefused(
                f"wechatpay notification: unreadable ({type(error).__name__})"
            ) from error
        if not isinstance(data, dict):
            # callback() answers None for a resource that is missing, not `encrypt-resource`,
            # or does not decrypt with the APIv3 key (and for a signature that fails).
            raise NotificationRefused("wechatpay notification: no resource that decrypts with the APIv3 key")
        return data

    def _check_ours(self, event_type: str, resource: dict[str, Any]) -> None:
        family = event_type.split(".")[0]
        if (family in ("TRANSACTION", "REFUND") or "mchid" in resource) and resource.get(
            "mchid"
        ) != self.mchid:
            raise NotificationMismatch("wechatpay notification: for another merchant")
        if family == "TRANSACTION" and resource.get("appid") != self.appid:
            raise NotificationMismatch("wechatpay notification: for another app")


def _kind(event_type: str, resource: dict[str, Any]) -> NotificationKind:
    if event_type == "TRANSACTION.SUCCESS" and resource.get("trade_state") == "SUCCESS":
        return NotificationKind.SUCCEEDED
    if event_type == "REFUND.SUCCESS" and resource.get("refund_status") == "SUCCESS" and _full(resource):
        return NotificationKind.REFUNDED
    # A partial refund (the merchant's, from the console) leaves money held: not REFUNDED.
    # REFUND.ABNORMAL / REFUND.CLOSED need an operator, not the saga; others we do not act on.
    return NotificationKind.IGNORED


def _full(resource: dict[str, Any]) -> bool:
    amount = resource.get("amount")
    return isinstance(amount, dict) and amount.get("refund") == amount.get("total") is not None


def _amount(kind: NotificationKind, resource: dict[str, Any]) -> tuple[int | None, str | None]:
    """Fen, as WeChat Pay counts them: CNY's minor unit, so no conversion but a type check.

    A refund's amount is `amount.total`, the paid order's total (the shop refunds in full and
    compares the payment's own amount); refund notifications carry no currency: CNY."""
    if kind is NotificationKind.IGNORED:
        return None, None
    amount = resource.get("amount")
    total = amount.get("total") if isinstance(amount, dict) else None
    if not isinstance(amount, dict) or not isinstance(total, int) or isinstance(total, bool):
        raise NotificationRefused("wechatpay notification: no amount.total")
    currency = amount.get("currency", "CNY") if kind is NotificationKind.SUCCEEDED else "CNY"
    if not isinstance(currency, str):
        raise NotificationRefused("wechatpay notification: unreadable amount.currency")
    return total, currency.upper()
