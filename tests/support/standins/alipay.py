"""A local stand-in of Alipay's open API gateway, for the adapter's tests. Never shipped.

    with AlipayStandIn() as alipay:
        provider = AlipayProvider(alipay.settings(), timeout=(0.5, 0.5))
        payment = provider.create_payment(...)   # alipay.trade.precreate
        alipay.pay(payment.id)                   # the buyer scans and pays; notify_url is POSTed

What it serves, at `/gateway.do` (GET with the parameters in the query string, as the SDK
sends them, or a form POST): alipay.trade.precreate, .query, .close, .refund and
.fastpay.refund.query, as Alipay documents them. Each request's RSA2 signature (over every
parameter but `sign`) is checked with the APP's public key, and each `<method>_response` is
signed with ALIPAY's private key, both by the SDK: one `AliPay` instance whose "app private
key" is Alipay's and whose "Alipay public key" is the app's. A request that does not verify is
answered like Alipay does, unsigned, `isv.invalid-signature`.

Alipay's ways kept here: a precreated trade does not exist until the buyer scans the QR code
(query and close answer ACQ.TRADE_NOT_EXIST); a full refund closes the trade; a refund request
number asked again answers `fund_change` "N"; a refund still processing has no `refund_status`.

What a test drives: `scan`, `pay`, `decline` (scanned, left unpaid, closed at its expiry),
`refunds_stay_processing(n)`, `fail_next(n, status)`, `hang_next(n, seconds)`, `pay_on_close`
(the buyer pays as the close arrives), `notification(...)` (a signed one, not sent, optionally
forged or old) and `deliver(...)`; what it saw: `received`, `calls(method)`, `deliveries`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import requests
from alipay import AliPay
from werkzeug.wrappers import Request, Response

from app.payment_settings import AlipaySettings
from app.payments.alipay_wire import BEIJING, TIME_FORMAT, cents, yuan
from tests.support.keys import new_rsa_key, private_pem, public_pem
from tests.support.standins.server import StandInServer

APP_ID = "2021000123456789"
SELLER_ID = "2088102000000001"
BUYER_ID = "2088102000000002"
FEE_LIMIT_CENTS = 100_000_000_00  # precreate refuses more than 100,000,000.00 yuan

Answer = dict[str, Any]


def key_pair() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh RSA 2048 key."""
    key = new_rsa_key()
    return private_pem(key), public_pem(key)


def beijing_time(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, BEIJING).strftime(TIME_FORMAT)


def business(sub_code: str, sub_msg: str) -> Answer:
    return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}


@dataclass
class Refund:
    amount_cents: int
    queries_processing: int  # refund queries still to answer "processing"
    settled: bool = False


@dataclass
class Trade:
    out_trade_no: str
    total_cents: int
    subject: str
    time_expire: str | None
    notify_url: str | None
    qr_code: str
    trade_no: str
    scanned: bool = False
    status: str = "WAIT_BUYER_PAY"
    refunded_cents: int = 0
    refunds: dict[str, Refund] = field(default_factory=dict)
    gmt_payment: str | None = None


@dataclass(frozen=True)
class Received:
    """One gateway request as it arrived: its common parameters, its biz_content, whether its
    signature verified with the app's public key."""

    method: str
    params: dict[str, str]
    biz: dict[str, Any]
    signed_by_app: bool


@dataclass
class Delivery:
    out_trade_no: str
    kind: str
    url: str
    attempts: int = 0
    status: int | None = None  # the last HTTP status answered, None if none answered
    done: bool = False


class AlipayStandIn:
    def __init__(self, app_id: str = APP_ID) -> None:
        self.app_id = app_id
        self.app_private_key, self.app_public_key = key_pair()
        self.alipay_private_key, self.alipay_public_key = key_pair()
        # Signs as Alipay, verifies the app: the SDK's roles, turned around.
        self._alipay = AliPay(
            appid=app_id,
            app_private_key_string=self.alipay_private_key,
            alipay_public_key_string=self.app_public_key,
            sign_type="RSA2",
        )
        self.trades: dict[str, Trade] = {}
        self.received: list[Received] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.RLock()
        # Scripted answers, each (method or None for any, what): taken by the next request.
        self._failures: list[tuple[str | None, int]] = []
        self._hangs: list[tuple[str | None, float]] = []
        self._refusals: list[tuple[str | None, Answer]] = []
        self._pay_on_close: set[str] = set()
        self._refund_queries_processing = 0
        self._ids = itertools.count(1)
        self.server = StandInServer(self._wsgi, "alipay-standin")

    # -- the server ---------------------------------------------------------------------------

    def start(self) -> AlipayStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> AlipayStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def gateway(self) -> str:
        return f"{self.server.url}/gateway.do"

    def settings(self, **changes: str) -> AlipaySettings:
        """The shop's settings for this stand-in: our app's id and private key, Alipay's public key."""
        values = {
            "app_id": self.app_id,
            "private_key": self.app_private_key,
            "public_key": self.alipay_public_key,
            "gateway": self.gateway,
        }
        return AlipaySettings(**{**values, **changes})

    # -- what a test drives -------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 502, method: str | None = None) -> None:
        """The next `count` requests (of `method`, or any) are answered `status` with an HTML
        page, unprocessed."""
        with self._lock:
            self._failures.extend([(method, status)] * count)

    def hang_next(self, count: int = 1, seconds: float = 2.0, method: str | None = None) -> None:
        """The next `count` requests (of `method`, or any) take effect at once, but their
        answer waits `seconds`."""
        with self._lock:
            self._hangs.extend([(method, seconds)] * count)

    def refuse_next(self, sub_code: str, method: str | None = None, code: str = "40004") -> None:
        """The next request (of `method`, or any) is answered, signed, with this failure
        instead of being processed: ACQ.SYSTEM_ERROR, or code 20000 (service unavailable)..."""
        with self._lock:
            self._refusals.append(
                (method, {"code": code, "msg": "Failed", "sub_code": sub_code, "sub_msg": "-"})
            )

    def refunds_stay_processing(self, queries: int) -> None:
        """The next refund stays processing (`fund_change` "N", no `refund_status`) for the
        first `queries` refund queries of it, and is settled by the one after."""
        with self._lock:
            self._refund_queries_processing = queries

    def pay_on_close(self, out_trade_no: str) -> None:
        """The race: the buyer pays at the moment the close of this trade arrives. The trade is
        paid (and notified) and the close answers what Alipay then answers, TRADE_STATUS_ERROR."""
        with self._lock:
            self._pay_on_close.add(out_trade_no)

    def scan(self, out_trade_no: str) -> Trade:
        """The buyer scans the QR code: Alipay now has the trade, waiting for the buyer to pay."""
        with self._lock:
            trade = self.trades[out_trade_no]
            trade.scanned = True
            return trade

    def pay(self, out_trade_no: str, notify: bool = True) -> Trade:
        with self._lock:
            trade = self.scan(out_trade_no)
            assert trade.status == "WAIT_BUYER_PAY", f"cannot pay a {trade.status} trade"
            trade.status, trade.gmt_payment = "TRADE_SUCCESS", beijing_time()
        if notify:
            self.deliver(out_trade_no, "paid")
        return trade

    def decline(self, out_trade_no: str, notify: bool = True) -> Trade:
        """The buyer scanned but did not pay, and the trade closed at its expiry."""
        with self._lock:
            trade = self.scan(out_trade_no)
            assert trade.status == "WAIT_BUYER_PAY", f"cannot decline a {trade.status} trade"
            trade.status = "TRADE_CLOSED"
        if notify:
            self.deliver(out_trade_no, "closed")
        return trade

    def calls(self, method: str) -> list[Received]:
        with self._lock:
            return [request for request in self.received if request.method == method]

    # -- notifications ------------------------------------------------------------------------

    def notification(
        self,
        out_trade_no: str,
        kind: str = "paid",
        /,
        *,
        sent_at: float | None = None,
        signing_key: str | None = None,
        **fields: str,
    ) -> tuple[dict[str, str], bytes]:
        """(headers, raw body) of a signed notification of this trade, not sent. `kind`: paid,
        finished, closed, waiting, refunded (full), partly_refunded. `sent_at` sets notify_time
        (epoch seconds), `signing_key` a private PEM to sign with instead of Alipay's, and
        `fields` add to or override the notification's fields (app_id, notify_id, ...)."""
        with self._lock:
            params = self._notification_fields(self.trades[out_trade_no], kind)
        params = {**params, "notify_time": beijing_time(sent_at), **fields}
        signer = (
            self._alipay if signing_key is None else _signer(self.app_id, signing_key, self.app_public_key)
        )
        # The SDK's sign_data: the sorted k=v string signed, then every value form-encoded.
        body = signer.sign_data(params) + "&sign_type=RSA2"
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body.encode()

    def deliver(self, out_trade_no: str, kind: str) -> Delivery:
        """POST the notification to the trade's notify_url in the background, as Alipay does:
        again (re-signed, the same notify_id) after a short backoff until a 2xx, for at most
        DELIVERY_SECONDS."""
        with self._lock:
            url = self.trades[out_trade_no].notify_url
            assert url, "the trade was precreated without a notify_url"
            delivery = Delivery(out_trade_no, kind, url)
            self.deliveries.append(delivery)
        notify_id = f"{hashlib.sha256(f'{out_trade_no}:{kind}'.encode()).hexdigest()[:32]}"
        self.server.deliver(lambda: self._deliver_once(delivery, notify_id))
        return delivery

    def _deliver_once(self, delivery: Delivery, notify_id: str) -> bool:
        headers, body = self.notification(delivery.out_trade_no, delivery.kind, notify_id=notify_id)
        delivery.attempts += 1
        try:
            response = requests.post(delivery.url, data=body, headers=headers, timeout=(1.0, 2.0))
        except requests.RequestException:
            delivery.status = None
            return False
        delivery.status = response.status_code
        delivery.done = response.ok
        return delivery.done

    def _notification_fields(self, trade: Trade, kind: str) -> dict[str, str]:
        statuses = {"paid": "TRADE_SUCCESS", "finished": "TRADE_FINISHED", "closed": "TRADE_CLOSED"}
        statuses |= {
            "waiting": "WAIT_BUYER_PAY",
            "refunded": "TRADE_CLOSED",
            "partly_refunded": "TRADE_SUCCESS",
        }
        params = {
            "notify_type": "trade_status_sync",
            "notify_id": f"{next(self._ids):04d}{trade.trade_no[-28:]}",
            "app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": statuses[kind],
            "total_amount": yuan(trade.total_cents),
            "subject": trade.subject,
            "seller_id": SELLER_ID,
            "buyer_id": BUYER_ID,
            "gmt_create": beijing_time(),
        }
        if kind in ("paid", "finished", "refunded", "partly_refunded"):
            params |= {
                "gmt_payment": trade.gmt_payment or beijing_time(),
                "receipt_amount": params["total_amount"],
            }
        if kind in ("refunded", "partly_refunded"):
            refunded = trade.total_cents if kind == "refunded" else max(1, trade.total_cents // 2)
            params |= {
                "refund_fee": yuan(refunded),
                "gmt_refund": beijing_time(),
                "out_biz_no": f"{trade.out_trade_no}-refund",
            }
        return params

    # -- the gateway --------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._respond(request)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if request.path != "/gateway.do":
            return Response("not found", status=404)
        params = dict(parse_qsl(request.query_string.decode("utf-8"), keep_blank_values=True))
        params |= request.form.to_dict()
        method = params.get("method", "")
        with self._lock:
            status = _take(self._failures, method)
            hang = _take(self._hangs, method)
        if status is not None:
            return Response("<html><body>gateway busy</body></html>", status=status, mimetype="text/html")
        raw = self._answer(params)
        if hang:
            self.server.stopping.wait(hang)
        return Response(raw, content_type="text/html;charset=utf-8")

    def _answer(self, params: dict[str, str]) -> str:
        method = params.get("method", "")
        response_type = method.replace(".", "_") + "_response"
        signed_by_app = self._signed_by_app(params)
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            biz = {}
        with self._lock:
            self.received.append(Received(method, dict(params), biz, signed_by_app))
            if not signed_by_app or params.get("app_id") != self.app_id:
                # Alipay does not sign this refusal.
                refusal = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"}
                return json.dumps({response_type: refusal})
            handler = self._handlers().get(method)
            refusal = _take(self._refusals, method)
            if refusal is not None:
                answer = refusal
            elif handler is None:
                answer = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method"}
            else:
                answer = (
                    handler(biz, params)
                    if isinstance(biz, dict)
                    else business("ACQ.INVALID_PARAMETER", "biz")
                )
        return self._signed(response_type, answer)

    def _signed_by_app(self, params: dict[str, str]) -> bool:
        signature = params.get("sign")
        if not signature:
            return False
        unsigned = {key: value for key, value in params.items() if key != "sign"}
        message = "&".join(f"{key}={value}" for key, value in self._alipay._ordered_data(unsigned))
        try:
            return bool(self._alipay._verify(message, signature))
        except ValueError:
            return False

    def _signed(self, response_type: str, answer: Answer) -> str:
        content = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        return f'{{"{response_type}":{content},"sign":"{self._alipay._sign(content)}"}}'

    def _handlers(self) -> dict[str, Callable[[dict[str, Any], dict[str, str]], Answer]]:
        return {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
        }

    def _precreate(self, biz: dict[str, Any], params: dict[str, str]) -> Answer:
        out_trade_no, amount = str(biz.get("out_trade_no", "")), cents(biz.get("total_amount"))
        if not out_trade_no or amount is None or amount <= 0 or not biz.get("subject"):
            return business("ACQ.INVALID_PARAMETER", "参数无效")
        if amount > FEE_LIMIT_CENTS:
            return business("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
        trade = self.trades.get(out_trade_no)
        if trade is None:
            token = hashlib.sha256(out_trade_no.encode()).hexdigest()[:24]
            trade = Trade(
                out_trade_no=out_trade_no,
                total_cents=amount,
                subject=str(biz["subject"]),
                time_expire=biz.get("time_expire"),
                notify_url=params.get("notify_url"),
                qr_code=f"https://qr.alipay.com/bax{token}",
                trade_no=f"{time.strftime('%Y%m%d')}22001{next(self._ids):015d}",
            )
            self.trades[out_trade_no] = trade
        elif trade.total_cents != amount:
            return business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        elif trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        elif trade.status == "TRADE_CLOSED":
            return business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        return {"code": "10000", "msg": "Success", "out_trade_no": out_trade_no, "qr_code": trade.qr_code}

    def _scanned(self, biz: dict[str, Any]) -> Trade | None:
        trade = self.trades.get(str(biz.get("out_trade_no", "")))
        return trade if trade is not None and trade.scanned else None

    def _query(self, biz: dict[str, Any], params: dict[str, str]) -> Answer:
        trade = self._scanned(biz)
        if trade is None:
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        answer = {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "buy***@example.com",
            "trade_status": trade.status,
            "total_amount": yuan(trade.total_cents),
        }
        if trade.gmt_payment:
            answer |= {"send_pay_date": trade.gmt_payment, "buyer_pay_amount": yuan(trade.total_cents)}
        return answer

    def _close(self, biz: dict[str, Any], params: dict[str, str]) -> Answer:
        out_trade_no = str(biz.get("out_trade_no", ""))
        if out_trade_no in self._pay_on_close and out_trade_no in self.trades:
            self._pay_on_close.discard(out_trade_no)
            self.pay(out_trade_no)
        trade = self._scanned(biz)
        if trade is None:
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.status != "WAIT_BUYER_PAY":
            return business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status = "TRADE_CLOSED"
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
        }

    def _refund(self, biz: dict[str, Any], params: dict[str, str]) -> Answer:
        trade, amount = self._scanned(biz), cents(biz.get("refund_amount"))
        if trade is None:
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)  # Alipay's default
        refund = trade.refunds.get(request_no)
        if refund is None:
            if trade.gmt_payment is None or trade.status not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                return business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if amount is None or amount <= 0 or trade.refunded_cents + amount > trade.total_cents:
                return business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            refund = trade.refunds[request_no] = Refund(amount, self._refund_queries_processing)
            self._refund_queries_processing = 0
            fund_change = "N" if refund.queries_processing else "Y"
            if not refund.queries_processing:
                self._settle(trade, refund)
        elif refund.amount_cents != amount:
            return business("ACQ.REFUND_AMT_RESTRICTION", "退款金额与原请求不一致")
        else:
            fund_change = "N"  # the same request again: no money moves this time
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "fund_change": fund_change,
            "refund_fee": yuan(trade.refunded_cents),
        }

    def _settle(self, trade: Trade, refund: Refund) -> None:
        refund.settled = True
        trade.refunded_cents += refund.amount_cents
        full = trade.refunded_cents == trade.total_cents
        if full:
            trade.status = "TRADE_CLOSED"
        if trade.notify_url:
            self.deliver(trade.out_trade_no, "refunded" if full else "partly_refunded")

    def _refund_query(self, biz: dict[str, Any], params: dict[str, str]) -> Answer:
        trade = self._scanned(biz)
        if trade is None:
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        request_no = str(biz.get("out_request_no", ""))
        answer = {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": trade.out_trade_no,
            "out_request_no": request_no,
        }
        refund = trade.refunds.get(request_no)
        if refund is None:
            return answer  # Alipay's "no such refund": a success without refund_status
        if not refund.settled:
            if refund.queries_processing > 0:
                refund.queries_processing -= 1
                return answer | {"trade_no": trade.trade_no}
            self._settle(trade, refund)
        return answer | {
            "trade_no": trade.trade_no,
            "total_amount": yuan(trade.total_cents),
            "refund_amount": yuan(refund.amount_cents),
            "refund_status": "REFUND_SUCCESS",
        }


def _signer(app_id: str, private_key: str, public_key: str) -> AliPay:
    return AliPay(
        appid=app_id,
        app_private_key_string=private_key,
        alipay_public_key_string=public_key,
        sign_type="RSA2",
    )


def _take(script: list[tuple[str | None, Any]], method: str) -> Any:
    """The first scripted entry for `method` (or for any method), taken out; None if none."""
    for index, (for_method, what) in enumerate(script):
        if for_method in (None, method):
            del script[index]
            return what
    return None
