"""One way for end-to-end tests to act as each real provider's buyer and as the provider itself.

Each driver wraps that provider's stand-in (`tests/support/standins/`): the settings a
deployment needs to reach it, and what a test does through it: the buyer pays or is declined,
the provider fails for a while, the buyer pays while the shop closes the payment, the provider
sends a notification (genuine, forged, stale or with another amount). The payment is named by
the order as the shop shows it (`payment.provider_payment_id`).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Protocol

from tests.support.keys import private_pem, rsa_key
from tests.support.standins.alipay import AlipayStandIn, beijing_time
from tests.support.standins.stripe import StripeStandIn
from tests.support.standins.wechatpay import Forgery, WechatpayStandin

Order = dict[str, Any]
Signed = tuple[dict[str, str], bytes]


class Driver(Protocol):
    name: str
    # Why an order whose buyer was declined is cancelled: payment_failed where the provider
    # says the payment failed (Stripe by notification, WeChat Pay when asked at the timeout);
    # Alipay has no failed QR payment, only one never paid, closed at the timeout.
    decline_reason: str

    def env(self, shop_url: str) -> dict[str, str]:
        """The deployment's settings for this provider; `shop_url` is ORDERSAGA_PUBLIC_URL."""
        ...

    def stop(self) -> None: ...

    def checkout_url_ok(self, url: str) -> bool: ...

    def look(self, order: Order) -> None:
        """The buyer opens the checkout (for Alipay: scans the QR code) and goes no further."""
        ...

    def pay(self, order: Order, *, notify: bool = True) -> None: ...

    def decline(self, order: Order) -> None: ...

    def pay_on_close(self, order: Order) -> None:
        """The buyer pays at the very moment the shop's close or expire request arrives."""
        ...

    def pay_after_close(self, order: Order) -> None:
        """Money arrives for a payment the shop already closed, with its notification."""
        ...

    def state(self, order: Order) -> str:
        """The payment at the provider, in the contract's words (PENDING, SUCCEEDED, ...)."""
        ...

    def fail_next(self, count: int) -> None: ...

    def hang_next(self, count: int) -> None:
        """The next calls take longer than the adapter's read timeout."""
        ...

    def notification(
        self, order: Order, *, forged: bool = False, stale: bool = False, **change: Any
    ) -> Signed:
        """A success notification for this order's payment, not sent. `amount_cents` or
        `currency` in `change` alter what it says."""
        ...


def stripe_payment(order: Order) -> str:
    return str(order["payment"]["provider_payment_id"])


class StripeDriver:
    name = "stripe"
    decline_reason = "payment_failed"
    # Longer than the adapter's read timeout (10 s), so a hang is a timeout.
    HANG_SECONDS = 11.0

    def __init__(self) -> None:
        self.standin = StripeStandIn(hang_seconds=self.HANG_SECONDS).start()

    def env(self, shop_url: str) -> dict[str, str]:
        self.standin.webhook_url = f"{shop_url}/api/v1/payments/webhooks/stripe"
        settings = self.standin.settings()
        return {
            "ORDERSAGA_STRIPE_SECRET_KEY": settings.secret_key,
            "ORDERSAGA_STRIPE_WEBHOOK_SECRET": settings.webhook_secret,
            "ORDERSAGA_STRIPE_API_BASE": settings.api_base,
        }

    def stop(self) -> None:
        self.standin.stop()

    def checkout_url_ok(self, url: str) -> bool:
        return url.startswith("https://checkout.stripe.com/")

    def look(self, order: Order) -> None:
        pass

    def pay(self, order: Order, *, notify: bool = True) -> None:
        url, self.standin.webhook_url = (
            self.standin.webhook_url,
            (self.standin.webhook_url if notify else None),
        )
        try:
            self.standin.pay(stripe_payment(order))
        finally:
            self.standin.webhook_url = url

    def decline(self, order: Order) -> None:
        self.standin.decline(stripe_payment(order))

    def pay_on_close(self, order: Order) -> None:
        self.standin.pay_when_expired(stripe_payment(order))

    def pay_after_close(self, order: Order) -> None:
        standin, session_id = self.standin, stripe_payment(order)
        with standin._lock:
            session = standin.sessions[session_id]
            standin._charge(standin._intent_for(session, "succeeded"))
            session.update(status="complete", payment_status="paid")
            standin._emit("checkout.session.completed", standin.session_object(session_id))

    def state(self, order: Order) -> str:
        session = self.standin.session_object(stripe_payment(order), ("payment_intent.latest_charge",))
        intent = session.get("payment_intent")
        charge = intent.get("latest_charge") if isinstance(intent, dict) else None
        if isinstance(charge, dict) and charge.get("refunded"):
            return "REFUNDED"
        if session["status"] == "complete" and session["payment_status"] == "paid":
            return "SUCCEEDED"
        return {"open": "PENDING", "expired": "VOIDED"}.get(session["status"], "PENDING")

    def fail_next(self, count: int) -> None:
        self.standin.fail_next(count, status=503)

    def hang_next(self, count: int) -> None:
        self.standin.hang_next(count)

    def notification(
        self, order: Order, *, forged: bool = False, stale: bool = False, **change: Any
    ) -> Signed:
        changes: dict[str, Any] = {"payment_status": "paid", "status": "complete"}
        if "amount_cents" in change:
            changes["amount_total"] = change["amount_cents"]
        if "currency" in change:
            changes["currency"] = str(change["currency"]).lower()
        return self.standin.signed_notification(
            stripe_payment(order),
            "checkout.session.completed",
            secret="whsec_forged0123456789" if forged else None,
            timestamp=int(time.time()) - 3600 if stale else None,
            changes=changes,
        )


def alipay_trade(order: Order) -> str:
    return str(order["payment"]["provider_payment_id"])


class AlipayDriver:
    name = "alipay"
    decline_reason = "payment_timeout"
    HANG_SECONDS = 11.0

    def __init__(self) -> None:
        self.standin = AlipayStandIn().start()

    def env(self, shop_url: str) -> dict[str, str]:
        settings = self.standin.settings()
        return {
            "ORDERSAGA_ALIPAY_APP_ID": settings.app_id,
            "ORDERSAGA_ALIPAY_PRIVATE_KEY": settings.private_key,
            "ORDERSAGA_ALIPAY_PUBLIC_KEY": settings.public_key,
            "ORDERSAGA_ALIPAY_GATEWAY": settings.gateway,
        }

    def stop(self) -> None:
        self.standin.stop()

    def checkout_url_ok(self, url: str) -> bool:
        return url.startswith("https://qr.alipay.com/")

    def look(self, order: Order) -> None:
        self.standin.scan(alipay_trade(order))

    def pay(self, order: Order, *, notify: bool = True) -> None:
        self.standin.pay(alipay_trade(order), notify=notify)

    def decline(self, order: Order) -> None:
        self.standin.decline(alipay_trade(order))

    def pay_on_close(self, order: Order) -> None:
        self.standin.scan(alipay_trade(order))
        self.standin.pay_on_close(alipay_trade(order))

    def pay_after_close(self, order: Order) -> None:
        """A QR code closed before it was scanned stays payable at Alipay until its expiry."""
        with self.standin._lock:
            trade = self.standin.trades[alipay_trade(order)]
            trade.scanned, trade.status, trade.gmt_payment = True, "TRADE_SUCCESS", beijing_time()
        self.standin.deliver(trade.out_trade_no, "paid")

    def state(self, order: Order) -> str:
        trade = self.standin.trades[alipay_trade(order)]
        if trade.refunded_cents and trade.refunded_cents == trade.total_cents:
            return "REFUNDED"
        statuses = {"WAIT_BUYER_PAY": "PENDING", "TRADE_CLOSED": "VOIDED"}
        return statuses.get(trade.status, "SUCCEEDED")

    def fail_next(self, count: int) -> None:
        self.standin.fail_next(count, status=502)

    def hang_next(self, count: int) -> None:
        self.standin.hang_next(count, seconds=self.HANG_SECONDS)

    def notification(
        self, order: Order, *, forged: bool = False, stale: bool = False, **change: Any
    ) -> Signed | None:
        if "currency" in change:
            return None
        fields: dict[str, str] = {}
        if "amount_cents" in change:
            fields["total_amount"] = f"{Decimal(change['amount_cents']) / 100:.2f}"
        return self.standin.notification(
            alipay_trade(order),
            "paid",
            sent_at=time.time() - 3600 if stale else None,
            signing_key=private_pem(rsa_key("forger")) if forged else None,
            **fields,
        )


def wechat_trade(order: Order) -> str:
    return str(order["payment"]["provider_payment_id"])


class WechatpayDriver:
    name = "wechatpay"
    decline_reason = "payment_failed"
    HANG_SECONDS = 11.0
    STATES = {"SUCCESS": "SUCCEEDED", "REFUND": "REFUNDED", "CLOSED": "VOIDED", "PAYERROR": "FAILED"}

    def __init__(self) -> None:
        self.standin = WechatpayStandin().start()

    def env(self, shop_url: str) -> dict[str, str]:
        settings = self.standin.settings()
        return {
            "ORDERSAGA_WECHATPAY_MCHID": settings.mchid,
            "ORDERSAGA_WECHATPAY_APPID": settings.appid,
            "ORDERSAGA_WECHATPAY_PRIVATE_KEY": settings.private_key,
            "ORDERSAGA_WECHATPAY_CERT_SERIAL_NO": settings.cert_serial_no,
            "ORDERSAGA_WECHATPAY_APIV3_KEY": settings.apiv3_key,
            "ORDERSAGA_WECHATPAY_PUBLIC_KEY": settings.public_key,
            "ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID": settings.public_key_id,
            "ORDERSAGA_WECHATPAY_BASE_URL": settings.base_url,
        }

    def stop(self) -> None:
        self.standin.stop()

    def checkout_url_ok(self, url: str) -> bool:
        return url.startswith("weixin://wxpay/bizpayurl?pr=")

    def look(self, order: Order) -> None:
        pass

    def pay(self, order: Order, *, notify: bool = True) -> None:
        self.standin.pay(wechat_trade(order), notify=notify)

    def decline(self, order: Order) -> None:
        self.standin.fail(wechat_trade(order))

    def pay_on_close(self, order: Order) -> None:
        self.standin.pay_when_closed(wechat_trade(order))

    def pay_after_close(self, order: Order) -> None:
        self.standin.pay(wechat_trade(order))  # the stand-in lets a closed order be paid

    def state(self, order: Order) -> str:
        return self.STATES.get(self.standin.order(wechat_trade(order)).trade_state, "PENDING")

    def fail_next(self, count: int) -> None:
        self.standin.fail_next(count, status=500)

    def hang_next(self, count: int) -> None:
        self.standin.hang_next(count, seconds=self.HANG_SECONDS)

    def notification(
        self, order: Order, *, forged: bool = False, stale: bool = False, **change: Any
    ) -> Signed | None:
        amount = {"total": order["payable_cents"], "payer_total": order["payable_cents"], "currency": "CNY"}
        if "amount_cents" in change:
            amount["total"] = change["amount_cents"]
        if "currency" in change:
            amount["currency"] = change["currency"]
        keys = self.standin.keys
        forgery = Forgery(
            sign_with=keys.other_key if forged else None,
            timestamp=int(time.time()) - 3600 if stale else None,
        )
        return self.standin.notification(wechat_trade(order), resource={"amount": amount}, forgery=forgery)


def drivers() -> list[Driver]:
    return [AlipayDriver(), WechatpayDriver(), StripeDriver()]
