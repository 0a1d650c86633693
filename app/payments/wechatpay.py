"""The adapter for WeChat Pay API v3, Native payment (the buyer scans a QR code of `code_url`).

- The shop's payment id is WeChat Pay's `out_trade_no`, and it is also `ProviderPayment.id`:
  every later call names the order by it. Placing the same `out_trade_no` again with the same
  parameters returns the same `code_url` (WeChat Pay's documented idempotency), which is how
  create_payment is idempotent; the same number with other parameters is refused
  (OUT_TRADE_NO_USED), so a retry must pass the same deadline.
- Amounts are fen, CNY's minor unit; WeChat Pay takes CNY only.
- Closing answers 204 whatever happened (even for an order paid a moment earlier), so every
  void queries afterwards and reports what the query says.
- The refund's number is derived from the payment (`<out_trade_no>-refund`), so a retry of a
  refund still in progress asks about the same refund rather than making a second one.

Transport: see `wechatpay_wire`. Notifications: see `wechatpay_notify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay, WeChatPayType

from app.payment_settings import WechatpaySettings
from app.payments.port import (
    DEFAULT_TIMEOUT,
    Notification,
    PaymentStatus,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
)
from app.payments.wechatpay_notify import WechatpayNotifications
from app.payments.wechatpay_wire import WechatpayWire, WireKeys, segment

CURRENCY = "CNY"
CHINA_TIME = timezone(timedelta(hours=8), "CST")
DESCRIPTION_MAX = 127

TRADE_STATES = {
    "NOTPAY": PaymentStatus.PENDING,
    "USERPAYING": PaymentStatus.PENDING,
    "SUCCESS": PaymentStatus.SUCCEEDED,
    "CLOSED": PaymentStatus.VOIDED,
    "REVOKED": PaymentStatus.VOIDED,
    "PAYERROR": PaymentStatus.FAILED,
    "REFUND": PaymentStatus.REFUNDED,
}


class WechatpayProvider:
    """`WechatpayProvider(settings, timeout=(connect, read), session=None, refund_notify_url=None)`.

    Nothing is fetched at construction: WeChat Pay's key is the configured public key (or the
    public key of the configured platform certificate), never a downloaded certificate.
    `refund_notify_url`, when given, is where WeChat Pay sends refund results; the shop learns
    them by querying anyway. One instance per process, after any fork; not shared across threads.
    """

    name = "wechatpay"
    keyed_by_our_id = True

    def __init__(
        self,
        settings: WechatpaySettings,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        refund_notify_url: str | None = None,
    ) -> None:
        self.mchid = settings.mchid
        self.appid = settings.appid
        self.refund_notify_url = refund_notify_url
        private_key = _private_key(settings.private_key)
        platform_key = _platform_key(settings.public_key, settings.public_key_id)
        keys = WireKeys(
            settings.mchid, settings.cert_serial_no, private_key, platform_key, settings.public_key_id
        )
        self.wire = WechatpayWire(settings.base_url, keys, timeout, session)
        # The SDK's client, in public-key mode (public_key and public_key_id given), which is the
        # mode in which it downloads no platform certificate. Only its callback() is used.
        client = WeChatPay(
            wechatpay_type=WeChatPayType.NATIVE,
            mchid=settings.mchid,
            private_key=_pem(private_key),
            cert_serial_no=settings.cert_serial_no,
            appid=settings.appid,
            apiv3_key=settings.apiv3_key,
            timeout=timeout,
            public_key=_pem(platform_key),
            public_key_id=settings.public_key_id,
        )
        self.notifications = WechatpayNotifications(
            client,
            platform_key,
            mchid=settings.mchid,
            appid=settings.appid,
            public_key_id=settings.public_key_id,
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
        if currency.upper() != CURRENCY:
            raise ProviderRejected(f"wechatpay takes CNY only, not {currency[:8]!r}", code="CURRENCY_NOT_CNY")
        body = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": f"Order {reference}"[:DESCRIPTION_MAX],
            "out_trade_no": idempotency_key,
            "time_expire": wechat_time(expires_at),
            "notify_url": callback_url,
            "amount": {"total": _fen(amount_cents), "currency": CURRENCY},
        }
        answer = self.wire.call("POST", "/v3/pay/transactions/native", body)
        code_url = answer.get("code_url")
        if not isinstance(code_url, str) or not code_url:
            raise ProviderUnavailable("wechatpay POST /v3/pay/transactions/native: no code_url")
        return ProviderPayment(
            id=idempotency_key,
            status=PaymentStatus.PENDING,
            amount_cents=amount_cents,
            currency=CURRENCY,
            checkout_url=code_url,
        )

    def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        return _trade_payment(provider_payment_id, self._query(provider_payment_id))

    def void_payment(self, provider_payment_id: str) -> ProviderPayment:
        path = f"/v3/pay/transactions/out-trade-no/{segment(provider_payment_id)}/close"
        try:
            self.wire.call("POST", path, {"mchid": self.mchid})
        except ProviderRejected as error:
            if error.code != "ORDERPAID":
                raise
        # The close's 204 proves nothing (the buyer may have paid while it was in flight):
        # only the query after it says what the payment is.
        payment = self.get_payment(provider_payment_id)
        # REFUND says only that a refund was started: the caller's refund (under the same refund
        # number) says when it is done, so both are reported as paid.
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
            raise ProviderRejected(
                "wechatpay: the payment was paid, not closed",
                code="ORDERPAID",
                status_now=PaymentStatus.SUCCEEDED,
            )
        if payment.status is PaymentStatus.PENDING:
            # NOTPAY or USERPAYING (the buyer is entering a password): the close did not take.
            raise ProviderUnavailable("wechatpay: the order is still open after the close; retry")
        return payment

    def refund_payment(self, provider_payment_id: str) -> ProviderPayment:
        paid = self.get_payment(provider_payment_id)
        if paid.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
            raise ProviderRejected(
                f"wechatpay: cannot refund a payment that is {paid.status}",
                code="NOT_PAID",
                status_now=paid.status,
            )
        out_refund_no = refund_number(provider_payment_id)
        body: dict[str, Any] = {
            "out_trade_no": provider_payment_id,
            "out_refund_no": out_refund_no,
            "amount": {"refund": paid.amount_cents, "total": paid.amount_cents, "currency": CURRENCY},
        }
        if self.refund_notify_url:
            body["notify_url"] = self.refund_notify_url
        refund = self.wire.call("POST", "/v3/refund/domestic/refunds", body)
        if refund.get("status") == "PROCESSING":
            refund = self.wire.call("GET", f"/v3/refund/domestic/refunds/{segment(out_refund_no)}")
        return _refunded(paid, out_refund_no, refund.get("status"))

    def read_notification(self, headers: Mapping[str, str], raw_body: bytes, now: float) -> Notification:
        return self.notifications.read(headers, raw_body, now)

    def close(self) -> None:
        self.wire.close()

    def _query(self, out_trade_no: str) -> dict[str, Any]:
        path = f"/v3/pay/transactions/out-trade-no/{segment(out_trade_no)}?mchid={segment(self.mchid)}"
        return self.wire.call("GET", path)


def refund_number(out_trade_no: str) -> str:
    """The one refund request number of a payment: a retry reuses it, so WeChat Pay answers
    about the same refund instead of refunding twice."""
    return f"{out_trade_no}-refund"


def wechat_time(moment: datetime) -> str:
    """RFC 3339 in China time, whole seconds, rounded down: the order ends no later than the
    shop's deadline ('2018-06-08T10:34:56+08:00')."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("expires_at must be an aware datetime")
    return moment.astimezone(CHINA_TIME).replace(microsecond=0).isoformat()


def _fen(amount_cents: int) -> int:
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise TypeError("amount_cents must be an int")
    return amount_cents


def _trade_payment(out_trade_no: str, trade: dict[str, Any]) -> ProviderPayment:
    status = TRADE_STATES.get(str(trade.get("trade_state")))
    amount = trade.get("amount")
    total = amount.get("total") if isinstance(amount, dict) else None
    if status is None or not isinstance(total, int) or isinstance(total, bool):
        raise ProviderUnavailable(
            f"wechatpay query {out_trade_no}: unreadable answer (trade_state {trade.get('trade_state')!r})"
        )
    currency = amount.get("currency") if isinstance(amount, dict) else None
    return ProviderPayment(
        id=out_trade_no,
        status=status,
        amount_cents=total,
        currency=currency.upper() if isinstance(currency, str) else CURRENCY,
    )


def _refunded(paid: ProviderPayment, out_refund_no: str, status: object) -> ProviderPayment:
    if status == "SUCCESS":
        return ProviderPayment(
            id=paid.id, status=PaymentStatus.REFUNDED, amount_cents=paid.amount_cents, currency=paid.currency
        )
    if status in ("ABNORMAL", "CLOSED"):
        # ABNORMAL (the buyer's card refused the money) is not final, but no retry of ours
        # moves it: an operator must. CLOSED: the refund is off and the payment still paid.
        raise ProviderRejected(f"wechatpay refund {out_refund_no} is {status}", code=str(status))
    # PROCESSING (or a state we do not know): asked again later with the same number.
    raise ProviderUnavailable(f"wechatpay refund {out_refund_no} is not final yet ({str(status)[:20]})")


def _private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the WeChat Pay merchant key must be an RSA private key")
    return key


def _platform_key(pem: str, public_key_id: str) -> rsa.RSAPublicKey:
    """WeChat Pay's public key, or its platform certificate's (whose serial must be the id)."""
    key: object
    if "BEGIN CERTIFICATE" in pem:
        certificate = x509.load_pem_x509_certificate(pem.encode())
        if format(certificate.serial_number, "X") != public_key_id.upper().lstrip("0"):
            raise ValueError("the WeChat Pay public_key_id is not the platform certificate's serial")
        key = certificate.public_key()
    else:
        key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay's key must be an RSA public key")
    return key


def _pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """The PEM forms the SDK's loaders expect (PKCS#8, SubjectPublicKeyInfo)."""
    if isinstance(key, rsa.RSAPrivateKey):
        data = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    else:
        data = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data.decode()
