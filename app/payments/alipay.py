"""The adapter for Alipay's open API (RSA2 keys, not certificates), through python-alipay-sdk.

Every call is one signed GET to the gateway (the SDK's `server_api`, over urllib). The SDK
verifies the signature of the `<method>_response` object of each answer with Alipay's public
key and gives back that object; an answer without a signature (Alipay does not sign some of
its refusals of our requests) or with a wrong one, a non-JSON answer, an HTTP error status, a
refused connection and a timeout all raise ProviderUnavailable, like any answer we cannot read.

A signed answer is Alipay's word: `code` 10000 is success; 20000 (service unavailable) and
`sub_code` ACQ.SYSTEM_ERROR are transient; our own credentials or permissions refused are a
configuration fault of the shop, retried rather than compensated (as in sandbox.py); the other
40004 business failures are ProviderRejected, or PaymentNotFound for ACQ.TRADE_NOT_EXIST.

The payment's id is ours: `out_trade_no` is the shop's payment id (the `idempotency_key`),
and it is what create_payment answers as ProviderPayment.id. Alipay's own `trade_no` does not
exist yet when precreate answers: Alipay creates the trade only when the buyer scans the QR
code. So, until then, alipay.trade.query answers ACQ.TRADE_NOT_EXIST for a payment that is
simply not scanned yet: get_payment reports it PENDING, void_payment (after the close) VOIDED.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from alipay import AliPay, AliPayConfig
from alipay.exceptions import AliPayException, AliPayValidationError

from app.payment_settings import AlipaySettings
from app.payments import alipay_notify
from app.payments.alipay_wire import CURRENCY, beijing, beijing_now, cents, yuan
from app.payments.port import (
    DEFAULT_TIMEOUT,
    Notification,
    PaymentNotFound,
    PaymentStatus,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
)

SUCCESS = "10000"
TRANSIENT_CODES = frozenset({"20000"})
# Our app's credentials or permissions refused (a key swapped, a product not signed for).
CREDENTIAL_CODES = frozenset({"20001", "40006"})
TRANSIENT_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR"})
CREDENTIAL_SUB_CODES = frozenset(
    {"isv.invalid-app-id", "isv.invalid-signature", "isv.invalid-signature-type", "isv.missing-signature"}
)
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"
HAS_SUCCESS = "ACQ.TRADE_HAS_SUCCESS"
HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"
STATUS_OF_SUB_CODE = {HAS_SUCCESS: PaymentStatus.SUCCEEDED}
# What a close may answer and still be followed by the query that decides.
CLOSE_TOLERATED = frozenset({NOT_EXIST, STATUS_ERROR, HAS_CLOSE})

TRADE_STATUSES = {
    "WAIT_BUYER_PAY": PaymentStatus.PENDING,
    "TRADE_SUCCESS": PaymentStatus.SUCCEEDED,
    "TRADE_FINISHED": PaymentStatus.SUCCEEDED,
    # Closed unpaid (expired, or closed by us), or closed because fully refunded: the refund
    # query with our refund request number tells them apart.
    "TRADE_CLOSED": PaymentStatus.VOIDED,
}
REFUND_SUCCESS = "REFUND_SUCCESS"


def refund_request_no(out_trade_no: str) -> str:
    """The one refund request number of a payment: a retry asks for the same refund again."""
    return f"{out_trade_no}-refund"


class AlipayProvider:
    """One instance holds one SDK client; build it per process, after any fork. The SDK opens a
    connection per call, so an instance may be shared across threads."""

    name = "alipay"
    keyed_by_our_id = True

    def __init__(self, settings: AlipaySettings, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.app_id = settings.app_id
        self.timeout = timeout
        self._client = AliPay(
            appid=settings.app_id,
            app_private_key_string=settings.private_key,
            alipay_public_key_string=settings.public_key,
            sign_type="RSA2",
            # urllib, which the SDK uses, has one timeout for the connect and for each read of
            # the socket: it is given the larger of the two.
            config=AliPayConfig(timeout=max(timeout)),
        )
        # The SDK knows only its production and its sandbox gateway; the settings say which.
        self._client._gateway = settings.gateway

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
            raise ProviderRejected(f"alipay takes {CURRENCY} only, not {currency}", code="currency")
        biz = {
            "out_trade_no": idempotency_key,
            "total_amount": yuan(amount_cents),
            "subject": f"Order {reference}",
            "time_expire": beijing(expires_at),
        }
        answer = self._call(
            "alipay.trade.precreate", biz, tolerate={HAS_SUCCESS, HAS_CLOSE}, notify_url=callback_url
        )
        if answer.get("sub_code") in (HAS_SUCCESS, HAS_CLOSE):
            # The same out_trade_no again, once the trade is settled: the same payment, as it is now.
            return self.get_payment(idempotency_key)
        qr_code = answer.get("qr_code")
        if not isinstance(qr_code, str) or not qr_code or answer.get("out_trade_no") != idempotency_key:
            raise ProviderUnavailable(f"alipay precreate: unreadable answer {_short(answer)}")
        # The QR code's content is an https://qr.alipay.com/... URL that the Alipay app opens:
        # the checkout shows it as a QR code (or links it on a phone).
        return ProviderPayment(
            id=idempotency_key,
            status=PaymentStatus.PENDING,
            amount_cents=amount_cents,
            currency=CURRENCY,
            checkout_url=qr_code,
        )

    def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        return self._payment(provider_payment_id, unscanned=PaymentStatus.PENDING)

    def void_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Close, then query: only the query says what the trade is now. The close answers
        ACQ.TRADE_NOT_EXIST for a QR code never scanned and ACQ.TRADE_STATUS_ERROR for a trade
        paid (also by a buyer who paid while the close was on its way); either way, the query
        decides. A trade still waiting after the close is retried, never reported VOIDED."""
        self._call("alipay.trade.close", {"out_trade_no": provider_payment_id}, tolerate=CLOSE_TOLERATED)
        payment = self._payment(provider_payment_id, unscanned=PaymentStatus.VOIDED)
        if payment.status in (PaymentStatus.VOIDED, PaymentStatus.FAILED):
            return payment
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
            raise ProviderRejected(
                f"alipay close: the trade is {payment.status}", code=STATUS_ERROR, status_now=payment.status
            )
        raise ProviderUnavailable("alipay close: the trade still waits for the buyer after the close")

    def refund_payment(self, provider_payment_id: str) -> ProviderPayment:
        """The whole amount, under refund_request_no(): Alipay refunds one request number once.
        `fund_change` "Y" says this call moved the money; "N" (a refund still processing, or
        one made by an earlier try of the same number) is settled by the refund query."""
        payment = self._payment(provider_payment_id, unscanned=None)
        if payment.status is PaymentStatus.REFUNDED:
            return payment
        if payment.status is not PaymentStatus.SUCCEEDED:
            raise ProviderRejected(
                f"alipay refund: the trade is {payment.status}, not paid", status_now=payment.status
            )
        request_no = refund_request_no(provider_payment_id)
        biz = {
            "out_trade_no": provider_payment_id,
            "refund_amount": yuan(payment.amount_cents),
            "out_request_no": request_no,
        }
        answer = self._call("alipay.trade.refund", biz)
        if answer.get("fund_change") != "Y" and not self._refund_final(provider_payment_id, request_no):
            raise ProviderUnavailable(f"alipay refund {request_no}: not final yet")
        return replace(payment, status=PaymentStatus.REFUNDED)

    def read_notification(self, headers: Mapping[str, str], raw_body: bytes, now: float) -> Notification:
        """Alipay signs inside the form body: the headers prove nothing and are not read."""
        return alipay_notify.read_notification(self._client, self.app_id, raw_body, now)

    # -- the trade as Alipay has it -----------------------------------------------------------

    def _payment(self, out_trade_no: str, *, unscanned: PaymentStatus | None) -> ProviderPayment:
        """The trade now; `unscanned` is what a trade Alipay does not have yet counts as (None:
        PaymentNotFound). Its amount is not known then, and is given as 0."""
        tolerate = {NOT_EXIST} if unscanned is not None else set()
        answer = self._call("alipay.trade.query", {"out_trade_no": out_trade_no}, tolerate=tolerate)
        if unscanned is not None and answer.get("sub_code") == NOT_EXIST:
            return ProviderPayment(id=out_trade_no, status=unscanned, amount_cents=0, currency=CURRENCY)
        status = TRADE_STATUSES.get(str(answer.get("trade_status")))
        amount = cents(answer.get("total_amount"))
        if status is None or amount is None:
            raise ProviderUnavailable(f"alipay query: unreadable answer {_short(answer)}")
        if status is PaymentStatus.VOIDED and self._refunded(out_trade_no, amount):
            status = PaymentStatus.REFUNDED
        return ProviderPayment(id=out_trade_no, status=status, amount_cents=amount, currency=CURRENCY)

    def _refunded(self, out_trade_no: str, amount_cents: int) -> bool:
        """Whether our refund request of this trade refunded all of it."""
        answer = self._refund_query(out_trade_no, refund_request_no(out_trade_no))
        final = answer.get("refund_status") == REFUND_SUCCESS
        return final and cents(answer.get("refund_amount")) == amount_cents

    def _refund_final(self, out_trade_no: str, request_no: str) -> bool:
        return self._refund_query(out_trade_no, request_no).get("refund_status") == REFUND_SUCCESS

    def _refund_query(self, out_trade_no: str, request_no: str) -> dict[str, Any]:
        # An unknown request number is answered 10000 without `refund_status`: not refunded.
        biz = {"out_trade_no": out_trade_no, "out_request_no": request_no}
        return self._call("alipay.trade.fastpay.refund.query", biz)

    # -- one call -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        biz: dict[str, str],
        tolerate: set[str] | frozenset[str] = frozenset(),
        **params: str,
    ) -> dict[str, Any]:
        """The verified answer if it is a success or a failure named in `tolerate`; raises
        the classified ProviderError otherwise."""
        answer = self._send(method, biz, params)
        if answer.get("code") == SUCCESS or answer.get("sub_code") in tolerate:
            return answer
        raise _failure(method, answer)

    def _send(self, method: str, biz: dict[str, str], params: dict[str, str]) -> dict[str, Any]:
        what = f"alipay {method}"
        try:
            # `timestamp` in Beijing time: the SDK would write the server's local time.
            answer = self._client.server_api(method, dict(biz), timestamp=beijing_now(), **params)
        except (OSError, http.client.HTTPException) as error:  # URLError, HTTPError, timeouts
            raise ProviderUnavailable(f"{what}: {type(error).__name__}: {error}") from error
        except AliPayValidationError:
            raise ProviderUnavailable(f"{what}: the answer's signature does not verify") from None
        except AliPayException as error:
            raise ProviderUnavailable(f"{what}: an unsigned answer: {str(error)[:300]}") from None
        except (ValueError, LookupError, TypeError, AttributeError):  # not JSON, no response object
            raise ProviderUnavailable(f"{what}: an unreadable answer") from None
        if not isinstance(answer, dict):
            raise ProviderUnavailable(f"{what}: an unreadable answer")
        return answer


def _failure(method: str, answer: dict[str, Any]) -> Exception:
    code, sub_code = str(answer.get("code")), answer.get("sub_code")
    sub_code = sub_code if isinstance(sub_code, str) else None
    detail = f"alipay {method}: {code} {sub_code or '-'} {answer.get('sub_msg') or answer.get('msg') or ''}"
    if code in TRANSIENT_CODES | CREDENTIAL_CODES or sub_code in TRANSIENT_SUB_CODES | CREDENTIAL_SUB_CODES:
        return ProviderUnavailable(detail)
    if sub_code == NOT_EXIST:
        return PaymentNotFound(detail)
    if code.startswith("4"):
        # 40004: a business failure; 40001 / 40002: a parameter we sent was refused. Neither
        # can succeed on a retry of the same call.
        return ProviderRejected(
            detail, code=sub_code or code, status_now=STATUS_OF_SUB_CODE.get(sub_code or "")
        )
    return ProviderUnavailable(detail)  # a code Alipay does not document: not a definite no


def _short(answer: dict[str, Any]) -> str:
    return repr(answer)[:200]
