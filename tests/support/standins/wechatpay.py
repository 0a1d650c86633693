"""A local stand-in of WeChat Pay API v3 (Native payment), for the adapter's tests only.

    with WechatpayStandin() as wechat:            # or WechatpayStandin(mode="certificate")
        provider = WechatpayProvider(wechat.settings(), timeout=(0.5, 0.5))
        payment = provider.create_payment(...)
        wechat.pay(payment.id)                     # paid; the notification is POSTed to notify_url

It serves, on 127.0.0.1 and a free port, the endpoints the adapter calls, as WeChat Pay documents
them: it checks the merchant's `Authorization` signature (with `cryptography`, over
`METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`), signs every answer it can sign with its own
platform key (the SDK's `rsa_sign` over `TIMESTAMP\\nNONCE\\nBODY\\n`) and encrypts notification
resources with AES-256-GCM and the APIv3 key (`cryptography`'s AESGCM). It imports nothing of
the adapter: the wire format is the whole agreement.

Scripting: `pay`, `fail` (PAYERROR), `start_paying` (USERPAYING), `pay_when_closed` (the buyer
pays as the close arrives), `refunds_stay_processing`, `fail_next` (5xx / 429 / a business code),
`hang_next` (past the client's read timeout), `tamper_next` (a wrong signature or key serial).
Looking: `order`, `refund`, `requests`, `requests_to`, `deliveries`. Notifications:
`notification` builds a signed one without sending it (wrong key, old timestamp, other serial,
other merchant...), `send` POSTs one in the background, retrying until a 2xx for at most 30 s.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3.utils import rsa_sign
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from app.payment_settings import WechatpaySettings
from tests.support.keys import certificate, new_rsa_key, private_pem, public_pem
from tests.support.standins.server import StandInServer

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CHINA = timezone(timedelta(hours=8))
ALPHANUMERIC = string.ascii_letters + string.digits

URLS = Map(
    [
        Rule("/v3/pay/transactions/native", methods=["POST"], endpoint="create"),
        Rule("/v3/pay/transactions/out-trade-no/<no>", methods=["GET"], endpoint="query"),
        Rule("/v3/pay/transactions/out-trade-no/<no>/close", methods=["POST"], endpoint="close"),
        Rule("/v3/refund/domestic/refunds", methods=["POST"], endpoint="refund"),
        Rule("/v3/refund/domestic/refunds/<no>", methods=["GET"], endpoint="query_refund"),
    ]
)


def _random(length: int, alphabet: str = ALPHANUMERIC) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _now_text() -> str:
    return datetime.now(CHINA).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StandinKeys:
    """The merchant's key pair (the shop's settings get the private half) and WeChat Pay's.
    RSA 2048 generation takes a while: tests generate one set per module and pass it in."""

    merchant_key: rsa.RSAPrivateKey
    merchant_serial: str
    platform_key: rsa.RSAPrivateKey
    apiv3_key: str
    other_key: rsa.RSAPrivateKey  # for forgeries: a key that is nobody's

    @classmethod
    def generate(cls) -> StandinKeys:
        return cls(new_rsa_key(), _random(40, "0123456789ABCDEF"), new_rsa_key(), _random(32), new_rsa_key())


@dataclass(frozen=True)
class Forgery:
    """What to get wrong in a notification or an answer: the signing key, the timestamp, the
    key serial named, the APIv3 key the resource is encrypted with. Nothing: a genuine one."""

    sign_with: rsa.RSAPrivateKey | None = None
    timestamp: int | None = None
    serial: str | None = None
    apiv3_key: str | None = None


@dataclass
class Order:
    out_trade_no: str
    params: dict[str, Any]
    code_url: str
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    # Armed by pay_when_closed: the close's answer (204 or an error code) once the buyer paid.
    paid_at_close: int | str | None = None

    @property
    def total(self) -> int:
        return int(self.params["amount"]["total"])

    @property
    def notify_url(self) -> str:
        return str(self.params["notify_url"])


@dataclass
class Refund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str
    params: dict[str, Any]
    final: str
    processing_left: int
    status: str = "PROCESSING"
    create_time: str = field(default_factory=_now_text)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Delivery:
    """One notification being POSTed: `statuses` holds each attempt's HTTP status (0: none)."""

    url: str
    event_id: str
    statuses: list[int] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def delivered(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


@dataclass
class _Faults:
    # (method or None for any, what): taken by the first call of that method.
    fail: list[tuple[str | None, tuple[int, str]]] = field(default_factory=list)
    hang: list[tuple[str | None, float]] = field(default_factory=list)
    tamper: list[str] = field(default_factory=list)
    processing_queries: int = 0
    refund_final: str = "SUCCESS"


class WechatpayStandin:
    """`mode` is "public_key" (WeChat Pay's public key and a PUB_KEY_ID_...) or "certificate"
    (a self-signed platform certificate whose hex serial is the id)."""

    def __init__(
        self,
        *,
        mode: str = "public_key",
        keys: StandinKeys | None = None,
        mchid: str = MCHID,
        appid: str = APPID,
    ) -> None:
        self.keys = keys or StandinKeys.generate()
        self.mchid, self.appid, self.mode = mchid, appid, mode
        if mode == "certificate":
            self.public_key_pem, self.public_key_id = certificate(self.keys.platform_key)
        elif mode == "public_key":
            self.public_key_pem = public_pem(self.keys.platform_key)
            self.public_key_id = "PUB_KEY_ID_0114" + _random(20, string.digits)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}
        self.requests: list[Recorded] = []
        self.deliveries: list[Delivery] = []
        self._faults = _Faults()
        self._lock = threading.RLock()
        self.server = StandInServer(self._wsgi, "wechatpay-standin")
        self.base_url = self.server.url

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> WechatpayStandin:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> WechatpayStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self, **overrides: Any) -> WechatpaySettings:
        values: dict[str, Any] = {
            "mchid": self.mchid,
            "appid": self.appid,
            "private_key": private_pem(self.keys.merchant_key),
            "cert_serial_no": self.keys.merchant_serial,
            "apiv3_key": self.keys.apiv3_key,
            "public_key": self.public_key_pem,
            "public_key_id": self.public_key_id,
            "base_url": self.base_url,
        }
        values.update(overrides)
        return WechatpaySettings(**values)

    # -- scripting --------------------------------------------------------------------------

    def pay(self, out_trade_no: str, *, notify: bool = True) -> Delivery | None:
        """The buyer pays; WeChat Pay then POSTs TRANSACTION.SUCCESS to the order's notify_url."""
        with self._lock:
            order = self.orders[out_trade_no]
            order.trade_state = "SUCCESS"
            order.transaction_id = "4200" + _random(24, string.digits)
            order.success_time = _now_text()
        if not notify:
            return None
        return self.send(order.notify_url, *self.notification(out_trade_no))

    def fail(self, out_trade_no: str) -> None:
        """The payment fails at the bank (PAYERROR). WeChat Pay notifies nothing of it."""
        with self._lock:
            self.orders[out_trade_no].trade_state = "PAYERROR"

    def start_paying(self, out_trade_no: str) -> None:
        """The buyer is entering the password (USERPAYING): a close does not take."""
        with self._lock:
            self.orders[out_trade_no].trade_state = "USERPAYING"

    def pay_when_closed(self, out_trade_no: str, answer: int | str = 204) -> None:
        """The buyer pays just as the close arrives; the close then answers `answer`: 204 (it
        answers that whatever happened) or an error code such as "ORDERPAID"."""
        with self._lock:
            self.orders[out_trade_no].paid_at_close = answer

    def refunds_stay_processing(self, queries: int, final: str = "SUCCESS") -> None:
        """New refunds start PROCESSING and stay so for the next `queries` looks at them (a query,
        or the same refund asked for again), then are `final` (SUCCESS, ABNORMAL or CLOSED)."""
        with self._lock:
            self._faults.processing_queries, self._faults.refund_final = queries, final

    def fail_next(
        self, count: int = 1, status: int = 500, code: str = "SYSTEM_ERROR", *, method: str | None = None
    ) -> None:
        """The next `count` API calls (of `method` only, if given) answer `status` with `code`
        (signed, as WeChat Pay does, except a 401 SIGN_ERROR), before anything is done."""
        with self._lock:
            self._faults.fail.extend([(method, (status, code))] * count)

    def hang_next(self, count: int = 1, seconds: float = 2.0, *, method: str | None = None) -> None:
        """The next `count` API calls (of `method` only, if given) wait `seconds` before they
        are carried out and answered."""
        with self._lock:
            self._faults.hang.extend([(method, seconds)] * count)

    def tamper_next(self, count: int = 1, how: str = "signature") -> None:
        """The next `count` answers are signed with a key that is not WeChat Pay's ("signature")
        or name another key serial ("serial")."""
        with self._lock:
            self._faults.tamper.extend([how] * count)

    # -- looking ----------------------------------------------------------------------------

    def order(self, out_trade_no: str) -> Order:
        with self._lock:
            return self.orders[out_trade_no]

    def refund(self, out_refund_no: str) -> Refund:
        with self._lock:
            return self.refunds[out_refund_no]

    def requests_to(self, method: str, path_prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # -- notifications ----------------------------------------------------------------------

    def notification(
        self,
        out_trade_no: str,
        event_type: str = "TRANSACTION.SUCCESS",
        *,
        resource: dict[str, Any] | None = None,
        forgery: Forgery | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A signed notification about the order, as WeChat Pay would POST it, not sent.

        `resource` fields to change (e.g. {"mchid": "..."}) make strays; a `forgery` (another
        key, an old timestamp, another serial or APIv3 key) makes forged or stale ones."""
        forgery = forgery or Forgery()
        with self._lock:
            plain = {**self._resource(out_trade_no, event_type), **(resource or {})}
        nonce = _random(12)
        associated = plain.get("original_type", "transaction")
        ciphertext = AESGCM((forgery.apiv3_key or self.keys.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(plain, ensure_ascii=False).encode(), associated.encode()
        )
        body = {
            "id": f"EV-{_random(20, string.digits)}",
            "create_time": _now_text(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": SUMMARIES.get(event_type, "通知"),
            "resource": {
                "original_type": associated,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": associated,
                "nonce": nonce,
            },
        }
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = self.signed_headers(raw, forgery)
        return {**headers, "Content-Type": "application/json"}, raw

    def send(self, url: str, headers: dict[str, str], raw: bytes) -> Delivery:
        """POST a notification in the background until it is answered 2xx (for at most 30 s)."""
        delivery = Delivery(url, json.loads(raw)["id"])
        with self._lock:
            self.deliveries.append(delivery)
        self.server.deliver(lambda: self._deliver_once(delivery, headers, raw), done=delivery.done.set)
        return delivery

    def _deliver_once(self, delivery: Delivery, headers: dict[str, str], raw: bytes) -> bool:
        try:
            status = requests.post(delivery.url, data=raw, headers=headers, timeout=(1, 5)).status_code
        except requests.RequestException:
            status = 0
        delivery.statuses.append(status)
        return 200 <= status < 300

    def _resource(self, out_trade_no: str, event_type: str) -> dict[str, Any]:
        order = self.orders.get(out_trade_no)
        total = order.total if order else 1
        if event_type.startswith("REFUND."):
            refund = next((r for r in self.refunds.values() if r.out_trade_no == out_trade_no), None)
            return {
                "mchid": self.mchid,
                "out_trade_no": out_trade_no,
                "transaction_id": order.transaction_id if order else None,
                "out_refund_no": refund.out_refund_no if refund else f"{out_trade_no}-refund",
                "refund_id": refund.refund_id if refund else "50300" + _random(24, string.digits),
                "refund_status": event_type.split(".", 1)[1],
                "success_time": _now_text(),
                "user_received_account": "支付用户零钱",
                "amount": {"total": total, "refund": total, "payer_total": total, "payer_refund": total},
                "original_type": "refund",
            }
        return {
            **(self._trade_view(order) if order else {"mchid": self.mchid, "appid": self.appid}),
            "out_trade_no": out_trade_no,
            "trade_state": "SUCCESS" if event_type == "TRANSACTION.SUCCESS" else "NOTPAY",
            "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
            "original_type": "transaction",
        }

    def signed_headers(self, text: bytes, forgery: Forgery | None = None) -> dict[str, str]:
        """WeChat Pay's signature headers for an answer or notification body `text`."""
        forgery = forgery or Forgery()
        timestamp, serial = forgery.timestamp, forgery.serial
        stamp, nonce = str(timestamp if timestamp is not None else int(time.time())), _random(32)
        message = f"{stamp}\n{nonce}\n{text.decode()}\n"
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(forgery.sign_with or self.keys.platform_key, message),
            "Wechatpay-Serial": serial if serial is not None else self.public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    # -- the API ----------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        raw = request.get_data()
        body = json.loads(raw) if raw.strip() else None
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.path, dict(request.args), body, dict(request.headers))
            )
            hang = _take(self._faults.hang, request.method) or 0.0
        if hang:
            self.server.stopping.wait(hang)
        response = self._answer(request, raw, body)
        return response(environ, start_response)

    def _answer(self, request: Request, raw: bytes, body: Any) -> Response:
        with self._lock:
            fault = _take(self._faults.fail, request.method)
            tamper = self._faults.tamper.pop(0) if self._faults.tamper else None
            if fault:
                return self._response(fault[0], _error(fault[1]), tamper=tamper, signed=fault[0] != 401)
            if not self._authorized(request, raw):
                return self._response(401, _error("SIGN_ERROR", "签名错误"), signed=False)
            try:
                endpoint, arguments = URLS.bind_to_environ(request.environ).match()
            except HTTPException as error:
                return self._response(error.code or 404, _error("NOT_FOUND", "no such endpoint"))
            status, answer = getattr(self, f"_{endpoint}")(
                request, body if isinstance(body, dict) else {}, **arguments
            )
            return self._response(status, answer, tamper=tamper)

    def _response(
        self, status: int, answer: Any, *, tamper: str | None = None, signed: bool = True
    ) -> Response:
        text = b"" if answer is None else json.dumps(answer, ensure_ascii=False).encode()
        headers = {"Request-ID": _random(32)}
        if signed:
            key = self.keys.other_key if tamper == "signature" else None
            serial = "PUB_KEY_ID_0000OTHER" if tamper == "serial" else None
            headers.update(self.signed_headers(text, Forgery(sign_with=key, serial=serial)))
        mimetype = None if answer is None else "application/json; charset=utf-8"
        return Response(text, status=status, headers=headers, content_type=mimetype)

    def _authorized(self, request: Request, raw: bytes) -> bool:
        """The merchant's signature over METHOD, the URL as sent, its timestamp, nonce and body."""
        schema, _, rest = request.headers.get("Authorization", "").partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if schema != SIGNATURE_TYPE or fields.get("mchid") != self.mchid:
            return False
        if fields.get("serial_no") != self.keys.merchant_serial:
            return False
        if abs(time.time() - int(fields.get("timestamp") or 0)) > 300:
            return False
        url = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
        message = (
            f"{request.method}\n{url}\n{fields['timestamp']}\n{fields.get('nonce_str')}\n{raw.decode()}\n"
        )
        try:
            self.keys.merchant_key.public_key().verify(
                base64.b64decode(fields.get("signature", "")),
                message.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def _create(self, request: Request, body: dict[str, Any]) -> tuple[int, Any]:
        problem = self._bad_order(body)
        if problem:
            return 400, _error(*problem)
        order = self.orders.get(body["out_trade_no"])
        if order is None:
            order = Order(body["out_trade_no"], body, f"weixin://wxpay/bizpayurl?pr={_random(7)}")
            self.orders[order.out_trade_no] = order
        elif order.params != body:
            return 400, _error("OUT_TRADE_NO_USED", "商户订单号重复")
        elif order.trade_state in ("SUCCESS", "REFUND"):
            return 400, _error("ORDERPAID", "该订单已支付")
        elif order.trade_state in ("CLOSED", "REVOKED"):
            return 400, _error("ORDER_CLOSED", "订单已关闭")
        return 200, {"code_url": order.code_url}

    def _bad_order(self, body: dict[str, Any]) -> tuple[str, str] | None:
        missing = [
            k
            for k in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount")
            if not body.get(k)
        ]
        if missing:
            return "PARAM_ERROR", f"缺少参数 {missing[0]}"
        if body["mchid"] != self.mchid or body["appid"] != self.appid:
            return "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配"
        amount = body["amount"]
        if (
            not isinstance(amount.get("total"), int)
            or amount["total"] <= 0
            or amount.get("currency", "CNY") != "CNY"
        ):
            return "PARAM_ERROR", "amount 无效"
        try:
            expires = datetime.fromisoformat(body.get("time_expire", ""))
        except ValueError:
            return "PARAM_ERROR", "time_expire 格式错误"
        if expires.tzinfo is None:
            return "PARAM_ERROR", "time_expire 缺少时区"
        return None

    def _query(self, request: Request, body: dict[str, Any], no: str) -> tuple[int, Any]:
        if request.args.get("mchid") != self.mchid:
            return 400, _error("PARAM_ERROR", "mchid 不匹配")
        order = self.orders.get(no)
        if order is None:
            return 404, _error("ORDER_NOT_EXIST", "订单不存在")
        expires = datetime.fromisoformat(order.params["time_expire"])
        if order.trade_state == "NOTPAY" and expires < datetime.now(UTC):
            order.trade_state = "CLOSED"
        return 200, self._trade_view(order)

    def _trade_view(self, order: Order) -> dict[str, Any]:
        paid = order.trade_state in ("SUCCESS", "REFUND")
        view: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": "NATIVE",
            "trade_state": order.trade_state,
            "trade_state_desc": TRADE_DESCRIPTIONS[order.trade_state],
            "amount": {"total": order.total, "currency": "CNY", "payer_currency": "CNY"},
        }
        if paid:
            view.update(
                transaction_id=order.transaction_id, success_time=order.success_time, bank_type="OTHERS"
            )
            view["amount"]["payer_total"] = order.total
        return view

    def _close(self, request: Request, body: dict[str, Any], no: str) -> tuple[int, Any]:
        if body.get("mchid") != self.mchid:
            return 400, _error("PARAM_ERROR", "mchid 不匹配")
        order = self.orders.get(no)
        if order is None:
            return 404, _error("ORDER_NOT_EXIST", "订单不存在")
        if order.paid_at_close is not None:
            answer, order.paid_at_close = order.paid_at_close, None
            self.pay(no)
            return (204, None) if answer == 204 else (400, _error(str(answer), "订单已支付"))
        if order.trade_state in ("SUCCESS", "REFUND"):
            return 400, _error("ORDERPAID", "订单已支付")
        if order.trade_state in ("NOTPAY", "PAYERROR"):
            order.trade_state = "CLOSED"
        return 204, None

    def _refund(self, request: Request, body: dict[str, Any]) -> tuple[int, Any]:
        order = self.orders.get(str(body.get("out_trade_no")))
        if order is None or order.trade_state not in ("SUCCESS", "REFUND"):
            return 404, _error("RESOURCE_NOT_EXISTS", "订单号不存在或未支付")
        amount = body.get("amount") or {}
        if amount.get("total") != order.total or amount.get("refund") != order.total:
            return 400, _error("PARAM_ERROR", "退款金额与订单金额不符")
        refund = self.refunds.get(str(body.get("out_refund_no")))
        if refund is not None:
            return 200, self._refund_view(self._look(refund))
        if any(r.out_trade_no == order.out_trade_no for r in self.refunds.values()):
            return 400, _error("INVALID_REQUEST", "订单已全额退款")
        processing = self._faults.processing_queries
        refund = Refund(
            str(body["out_refund_no"]),
            order.out_trade_no,
            "50300" + _random(24, string.digits),
            body,
            final=self._faults.refund_final,
            processing_left=processing,
        )
        self.refunds[refund.out_refund_no] = refund
        order.trade_state = "REFUND"
        if not processing:
            self._finish(refund)
        return 200, self._refund_view(refund)

    def _query_refund(self, request: Request, body: dict[str, Any], no: str) -> tuple[int, Any]:
        refund = self.refunds.get(no)
        if refund is None:
            return 404, _error("RESOURCE_NOT_EXISTS", "退款单不存在")
        return 200, self._refund_view(self._look(refund))

    def _look(self, refund: Refund) -> Refund:
        if refund.status == "PROCESSING":
            if refund.processing_left > 0:
                refund.processing_left -= 1
            else:
                self._finish(refund)
        return refund

    def _finish(self, refund: Refund) -> None:
        refund.status = refund.final
        notify_url = refund.params.get("notify_url")
        if notify_url:
            self.send(notify_url, *self.notification(refund.out_trade_no, f"REFUND.{refund.final}"))

    def _refund_view(self, refund: Refund) -> dict[str, Any]:
        total = self.orders[refund.out_trade_no].total
        return {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": self.orders[refund.out_trade_no].transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time,
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": total,
                "refund": total,
                "payer_total": total,
                "payer_refund": total,
                "currency": "CNY",
            },
        }


def _take(faults: list[tuple[str | None, Any]], method: str) -> Any:
    for index, (only, value) in enumerate(faults):
        if only in (None, method):
            del faults[index]
            return value
    return None


def _error(code: str, message: str = "") -> dict[str, str]:
    return {"code": code, "message": message or code}


SUMMARIES = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}
TRADE_DESCRIPTIONS = {
    "NOTPAY": "订单未支付",
    "USERPAYING": "用户支付中",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REVOKED": "已撤销",
    "PAYERROR": "支付失败",
    "REFUND": "转入退款",
}
