"""The Alipay adapter, with python-alipay-sdk, against the local Alipay stand-in over real HTTP.

Every failure the saga must tell apart is produced on the wire (a 5xx, an answer too slow, a
signed business refusal, a forged signature), not by mocking the SDK.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from requests.structures import CaseInsensitiveDict
from werkzeug.wrappers import Request, Response

from app.payments.alipay import AlipayProvider, refund_request_no
from app.payments.alipay_wire import cents, yuan
from app.payments.port import (
    NotificationKind,
    NotificationMismatch,
    NotificationRefused,
    PaymentNotFound,
    PaymentStatus,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
)
from tests.support.standins.alipay import AlipayStandIn, key_pair
from tests.support.standins.server import StandInServer

CALLBACK = "http://127.0.0.1:9/api/v1/payments/webhooks/alipay"
DEADLINE = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
SHORT = (0.5, 0.5)
PRECREATE, QUERY, CLOSE = "alipay.trade.precreate", "alipay.trade.query", "alipay.trade.close"
REFUND, REFUND_QUERY = "alipay.trade.refund", "alipay.trade.fastpay.refund.query"


@pytest.fixture
def alipay() -> Iterator[AlipayStandIn]:
    with AlipayStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def provider(alipay: AlipayStandIn) -> AlipayProvider:
    return AlipayProvider(alipay.settings(), timeout=SHORT)


class Sink:
    """Our webhook endpoint as far as Alipay can tell: records each POST, answers `success`
    (what Alipay wants to read), or 500 for the first `failures` ones."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        self.server = StandInServer(self.wsgi, "alipay-webhook")
        self.server.start()
        self.url = f"{self.server.url}/api/v1/payments/webhooks/alipay"

    @Request.application  # type: ignore[misc]
    def wsgi(self, request: Request) -> Response:
        self.bodies.append((dict(request.headers), request.get_data()))
        if len(self.bodies) <= self.failures:
            return Response("fail", status=500)
        return Response("success", mimetype="text/plain")

    def wait_for(self, count: int, within: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + within
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.bodies) >= count, f"{len(self.bodies)} notification(s) arrived, not {count}"
        return self.bodies

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    receiver = Sink()
    yield receiver
    receiver.stop()


def create(
    provider: AlipayProvider,
    key: str = "pmt_1",
    amount_cents: int = 1999,
    callback_url: str = CALLBACK,
    currency: str = "CNY",
) -> ProviderPayment:
    return provider.create_payment(
        reference="ord_1",
        amount_cents=amount_cents,
        currency=currency,
        callback_url=callback_url,
        idempotency_key=key,
        expires_at=DEADLINE,
    )


def beijing_epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() - 8 * 3600


# -- create -------------------------------------------------------------------------------------


def test_create_precreates_a_qr_code_with_the_deadline_in_beijing_time(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    payment = create(provider)
    trade = alipay.trades["pmt_1"]
    assert payment == ProviderPayment(
        id="pmt_1",
        status=PaymentStatus.PENDING,
        amount_cents=1999,
        currency="CNY",
        checkout_url=trade.qr_code,
    )
    assert payment.checkout_url and payment.checkout_url.startswith("https://qr.alipay.com/")
    [request] = alipay.calls(PRECREATE)
    assert request.signed_by_app
    assert request.biz == {
        "out_trade_no": "pmt_1",
        "total_amount": "19.99",
        "subject": "Order ord_1",
        "time_expire": "2030-01-02 11:04:05",  # 03:04:05 UTC
    }
    assert request.params["notify_url"] == CALLBACK
    assert (request.params["app_id"], request.params["sign_type"]) == (alipay.app_id, "RSA2")
    # The request's own timestamp is Beijing time too, whatever the server's local zone.
    assert abs(beijing_epoch(request.params["timestamp"]) - time.time()) < 60


def test_create_again_with_the_same_key_is_the_same_payment(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    first, again = create(provider, "pmt_1"), create(provider, "pmt_1")
    assert first == again
    assert create(provider, "pmt_2").checkout_url != first.checkout_url
    assert sorted(alipay.trades) == ["pmt_1", "pmt_2"]
    assert [request.biz["out_trade_no"] for request in alipay.calls(PRECREATE)] == ["pmt_1", "pmt_1", "pmt_2"]


def test_create_again_once_paid_answers_the_payment_as_it_is(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    alipay.pay("pmt_1", notify=False)
    assert create(provider).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("amount_cents", "wire"),
    [(1, "0.01"), (10, "0.10"), (100, "1.00"), (1999, "19.99"), (123456789, "1234567.89")],
)
def test_amounts_go_as_yuan_strings(
    alipay: AlipayStandIn, provider: AlipayProvider, amount_cents: int, wire: str
) -> None:
    create(provider, amount_cents=amount_cents)
    assert alipay.calls(PRECREATE)[0].biz["total_amount"] == wire
    alipay.pay("pmt_1", notify=False)
    assert provider.get_payment("pmt_1").amount_cents == amount_cents


@pytest.mark.parametrize("text", ["19.9", "19.999", "1e3", "-1.00", "+1.00", "01.00", " 1.00", "1,00", ""])
def test_only_a_two_decimal_yuan_string_is_an_amount(text: str) -> None:
    assert cents(text) is None
    assert cents(19.99) is None
    assert (cents("0.00"), cents("19.99"), yuan(0)) == (0, 1999, "0.00")


def test_create_refusals(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    with pytest.raises(ProviderRejected) as too_much:
        create(provider, amount_cents=100_000_000_01)
    assert too_much.value.code == "ACQ.TOTAL_FEE_EXCEED"
    create(provider, amount_cents=1999)
    with pytest.raises(ProviderRejected) as changed:
        create(provider, amount_cents=2999)  # the same out_trade_no for another amount
    assert changed.value.code == "ACQ.CONTEXT_INCONSISTENT"
    with pytest.raises(ProviderRejected, match="CNY"):
        create(provider, key="pmt_usd", currency="USD")
    assert "pmt_usd" not in alipay.trades


# -- get ----------------------------------------------------------------------------------------


def test_get_in_each_state(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    for key in ("unscanned", "waiting", "paid", "declined", "refunded"):
        create(provider, key)
    alipay.scan("waiting")
    alipay.pay("paid", notify=False)
    alipay.decline("declined", notify=False)
    alipay.pay("refunded", notify=False)
    provider.refund_payment("refunded")

    # Not scanned yet: Alipay has no trade (ACQ.TRADE_NOT_EXIST), the payment is still pending.
    assert provider.get_payment("unscanned").status is PaymentStatus.PENDING
    expected = {
        "waiting": PaymentStatus.PENDING,
        "paid": PaymentStatus.SUCCEEDED,
        "declined": PaymentStatus.VOIDED,
        "refunded": PaymentStatus.REFUNDED,
    }
    for key, status in expected.items():
        assert provider.get_payment(key) == ProviderPayment(key, status, 1999, "CNY")


def test_a_finished_trade_is_succeeded(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    alipay.pay("pmt_1", notify=False).status = "TRADE_FINISHED"
    assert provider.get_payment("pmt_1").status is PaymentStatus.SUCCEEDED


# -- void ---------------------------------------------------------------------------------------


def test_void_of_a_pending_payment_closes_then_queries(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    alipay.scan("pmt_1")
    assert provider.void_payment("pmt_1") == ProviderPayment("pmt_1", PaymentStatus.VOIDED, 1999, "CNY")
    assert alipay.trades["pmt_1"].status == "TRADE_CLOSED"
    methods = [request.method for request in alipay.received]
    assert methods[methods.index(CLOSE) :] == [CLOSE, QUERY, REFUND_QUERY]


def test_void_of_a_qr_code_never_scanned_is_voided(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    assert provider.void_payment("pmt_1").status is PaymentStatus.VOIDED
    assert [request.method for request in alipay.received] == [PRECREATE, CLOSE, QUERY]


def test_void_racing_the_buyers_payment_is_rejected_as_succeeded(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    alipay.scan("pmt_1")
    alipay.pay_on_close("pmt_1")
    with pytest.raises(ProviderRejected) as raced:
        provider.void_payment("pmt_1")
    assert raced.value.status_now is PaymentStatus.SUCCEEDED
    assert alipay.trades["pmt_1"].status == "TRADE_SUCCESS"
    assert [request.method for request in alipay.received][-2:] == [CLOSE, QUERY]


def test_void_of_a_paid_or_refunded_payment_says_so(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider, "paid")
    alipay.pay("paid", notify=False)
    with pytest.raises(ProviderRejected) as paid:
        provider.void_payment("paid")
    assert paid.value.status_now is PaymentStatus.SUCCEEDED
    provider.refund_payment("paid")
    with pytest.raises(ProviderRejected) as refunded:
        provider.void_payment("paid")
    assert refunded.value.status_now is PaymentStatus.REFUNDED


def test_void_again_is_still_voided(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    alipay.scan("pmt_1")
    provider.void_payment("pmt_1")
    assert provider.void_payment("pmt_1").status is PaymentStatus.VOIDED


@pytest.mark.parametrize("method", [CLOSE, QUERY])
def test_void_with_an_outage_on_either_call_is_unavailable(
    alipay: AlipayStandIn, provider: AlipayProvider, method: str
) -> None:
    create(provider)
    alipay.scan("pmt_1")
    alipay.fail_next(1, 503, method=method)
    with pytest.raises(ProviderUnavailable, match="503"):
        provider.void_payment("pmt_1")
    assert provider.void_payment("pmt_1").status is PaymentStatus.VOIDED


def test_void_that_leaves_the_trade_waiting_is_unavailable_not_voided(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    alipay.scan("pmt_1")
    alipay.refuse_next("ACQ.TRADE_NOT_EXIST", method=CLOSE)  # the close did nothing
    with pytest.raises(ProviderUnavailable, match="still waits"):
        provider.void_payment("pmt_1")


# -- refund -------------------------------------------------------------------------------------


def test_refund_final_at_once(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    alipay.pay("pmt_1", notify=False)
    assert provider.refund_payment("pmt_1") == ProviderPayment("pmt_1", PaymentStatus.REFUNDED, 1999, "CNY")
    [request] = alipay.calls(REFUND)
    assert request.biz == {
        "out_trade_no": "pmt_1",
        "refund_amount": "19.99",
        "out_request_no": "pmt_1-refund",
    }
    assert alipay.trades["pmt_1"].status == "TRADE_CLOSED"
    # Refunded already: answered from the query, no second refund asked.
    assert provider.refund_payment("pmt_1").status is PaymentStatus.REFUNDED
    assert len(alipay.calls(REFUND)) == 1


def test_refund_in_progress_is_unavailable_then_final_with_the_same_request_number(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    alipay.pay("pmt_1", notify=False)
    alipay.refunds_stay_processing(queries=1)
    with pytest.raises(ProviderUnavailable, match="not final"):
        provider.refund_payment("pmt_1")
    assert alipay.trades["pmt_1"].refunded_cents == 0
    assert provider.refund_payment("pmt_1").status is PaymentStatus.REFUNDED
    numbers = [request.biz["out_request_no"] for request in alipay.calls(REFUND)]
    assert numbers == [refund_request_no("pmt_1")] * 2
    assert alipay.trades["pmt_1"].refunded_cents == 1999  # refunded once


def test_refund_whose_answer_was_lost_is_found_final_by_the_retry(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    alipay.pay("pmt_1", notify=False)
    alipay.refunds_stay_processing(queries=2)
    with pytest.raises(ProviderUnavailable):
        provider.refund_payment("pmt_1")
    with pytest.raises(ProviderUnavailable):
        provider.refund_payment("pmt_1")
    assert provider.refund_payment("pmt_1").status is PaymentStatus.REFUNDED


def test_refund_of_an_unpaid_payment_is_refused(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    for key in ("unscanned", "waiting", "declined"):
        create(provider, key)
    alipay.scan("waiting")
    alipay.decline("declined", notify=False)
    with pytest.raises(PaymentNotFound):
        provider.refund_payment("unscanned")
    with pytest.raises(ProviderRejected) as waiting:
        provider.refund_payment("waiting")
    assert waiting.value.status_now is PaymentStatus.PENDING
    with pytest.raises(ProviderRejected) as declined:
        provider.refund_payment("declined")
    assert declined.value.status_now is PaymentStatus.VOIDED
    assert alipay.calls(REFUND) == []


def test_refund_refused_by_alipay_is_rejected(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    alipay.pay("pmt_1", notify=False)
    alipay.refuse_next("ACQ.TRADE_STATUS_ERROR", method=REFUND)
    with pytest.raises(ProviderRejected) as refused:
        provider.refund_payment("pmt_1")
    assert refused.value.code == "ACQ.TRADE_STATUS_ERROR"


# -- outages and unreadable answers -------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_unavailable(alipay: AlipayStandIn, provider: AlipayProvider, status: int) -> None:
    alipay.fail_next(2, status)
    with pytest.raises(ProviderUnavailable, match=str(status)):
        create(provider)
    with pytest.raises(ProviderUnavailable, match=str(status)):
        provider.get_payment("pmt_1")
    assert alipay.trades == {}


def test_an_answer_too_slow_is_unavailable(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    alipay.hang_next(1, seconds=3.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"(?i)timed? ?out"):
        provider.get_payment("pmt_1")
    assert time.monotonic() - started < 2.0


def test_a_closed_port_is_unavailable(alipay: AlipayStandIn) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = AlipayProvider(alipay.settings(gateway=f"http://127.0.0.1:{port}/gateway.do"), timeout=SHORT)
    with pytest.raises(ProviderUnavailable, match="URLError"):
        closed.get_payment("pmt_1")


@pytest.mark.parametrize(
    ("sub_code", "code"),
    [("ACQ.SYSTEM_ERROR", "40004"), ("aop.ACQ.SYSTEM_ERROR", "40004"), ("isp.unknow-error", "20000")],
)
def test_transient_failures_are_unavailable(
    alipay: AlipayStandIn, provider: AlipayProvider, sub_code: str, code: str
) -> None:
    alipay.refuse_next(sub_code, code=code)
    with pytest.raises(ProviderUnavailable, match=sub_code):
        create(provider)


def test_a_payment_alipay_does_not_have_is_not_found_where_it_must_exist(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    with pytest.raises(PaymentNotFound):
        provider.refund_payment("pmt_unknown")
    create(provider)
    alipay.pay("pmt_1", notify=False)
    alipay.refuse_next("ACQ.TRADE_NOT_EXIST", method=REFUND)
    with pytest.raises(PaymentNotFound):
        provider.refund_payment("pmt_1")


def test_an_answer_not_signed_by_alipay_is_unavailable(alipay: AlipayStandIn) -> None:
    _, other_public = key_pair()
    fooled = AlipayProvider(alipay.settings(public_key=other_public), timeout=SHORT)
    with pytest.raises(ProviderUnavailable, match="signature"):
        create(fooled)


def test_our_key_refused_by_alipay_is_unavailable_not_a_refusal(alipay: AlipayStandIn) -> None:
    """Alipay answers a request it cannot verify unsigned (isv.invalid-signature): a
    configuration fault of ours, which must not cancel a buyer's order as if declined."""
    other_private, _ = key_pair()
    wrong = AlipayProvider(alipay.settings(private_key=other_private), timeout=SHORT)
    with pytest.raises(ProviderUnavailable, match="invalid-signature") as error:
        create(wrong)
    assert not alipay.calls(PRECREATE)[0].signed_by_app
    assert "PRIVATE KEY" not in str(error.value) and other_private[40:80] not in str(error.value)


@pytest.mark.parametrize(
    "body", [b"<html>gateway</html>", b"{}", b'{"alipay_trade_query_response": "x", "sign": "AAAA"}', b""]
)
def test_an_unreadable_answer_is_unavailable(alipay: AlipayStandIn, body: bytes) -> None:
    garbled = StandInServer(Response(body), "garbled-gateway")
    garbled.start()
    try:
        gateway = f"{garbled.url}/gateway.do"
        with pytest.raises(ProviderUnavailable):
            AlipayProvider(alipay.settings(gateway=gateway), timeout=SHORT).get_payment("pmt_1")
    finally:
        garbled.stop()


# -- the wire, checked without the SDK ----------------------------------------------------------


def _rsa2_verifies(public_pem: str, message: str, signature: str) -> bool:
    key: Any = serialization.load_pem_public_key(public_pem.encode())
    try:
        key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:  # noqa: BLE001 - cryptography's InvalidSignature
        return False
    return True


def test_requests_and_notifications_are_rsa2_as_alipay_documents(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    """Alipay's canonical strings built here by hand and verified with `cryptography`, so the
    SDK on both sides cannot agree with itself on something Alipay would refuse."""
    create(provider)
    params = dict(alipay.calls(PRECREATE)[0].params)
    signature = params.pop("sign")
    request_string = "&".join(f"{key}={params[key]}" for key in sorted(params))  # sign_type included
    assert _rsa2_verifies(alipay.app_public_key, request_string, signature)

    _, body = alipay.notification("pmt_1", "paid")
    fields = dict(parse_qsl(body.decode()))
    signature = fields.pop("sign")
    assert fields.pop("sign_type") == "RSA2"
    notify_string = "&".join(f"{key}={fields[key]}" for key in sorted(fields))
    assert _rsa2_verifies(alipay.alipay_public_key, notify_string, signature)
    assert not _rsa2_verifies(alipay.alipay_public_key, notify_string + "x", signature)


# -- notifications ------------------------------------------------------------------------------


def test_a_payment_is_notified_to_the_notify_url(
    alipay: AlipayStandIn, provider: AlipayProvider, sink: Sink
) -> None:
    create(provider, callback_url=sink.url)
    alipay.pay("pmt_1")
    [(headers, body)] = sink.wait_for(1)
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    notification = provider.read_notification(CaseInsensitiveDict(headers), body, time.time())
    assert notification.kind is NotificationKind.SUCCEEDED
    assert (notification.payment_id, notification.provider_payment_id) == ("pmt_1", "pmt_1")
    assert (notification.amount_cents, notification.currency) == (1999, "CNY")
    assert notification.event_id == dict(parse_qsl(body.decode()))["notify_id"]


def test_a_notification_is_sent_again_until_answered(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    flaky = Sink(failures=2)
    try:
        create(provider, callback_url=flaky.url)
        alipay.pay("pmt_1")
        bodies = flaky.wait_for(3)
        deadline = time.monotonic() + 5
        while not alipay.deliveries[0].done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert alipay.deliveries[0].done and alipay.deliveries[0].attempts == 3
        events = {provider.read_notification({}, body, time.time()).event_id for _, body in bodies}
        assert len(events) == 1  # the same notify_id each time: de-duplicated downstream
    finally:
        flaky.stop()


def test_a_refund_is_notified(alipay: AlipayStandIn, provider: AlipayProvider, sink: Sink) -> None:
    create(provider, callback_url=sink.url)
    alipay.pay("pmt_1", notify=False)
    provider.refund_payment("pmt_1")
    [(_, body)] = sink.wait_for(1)
    assert provider.read_notification({}, body, time.time()).kind is NotificationKind.REFUNDED


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("paid", NotificationKind.SUCCEEDED),
        ("finished", NotificationKind.SUCCEEDED),
        ("closed", NotificationKind.IGNORED),
        ("refunded", NotificationKind.REFUNDED),
        ("partly_refunded", NotificationKind.IGNORED),
        ("waiting", NotificationKind.IGNORED),
    ],
)
def test_each_kind_of_notification(
    alipay: AlipayStandIn, provider: AlipayProvider, kind: str, expected: NotificationKind
) -> None:
    create(provider)
    headers, body = alipay.notification("pmt_1", kind, notify_id="n-1")
    notification = provider.read_notification(headers, body, time.time())
    assert notification.kind is expected
    assert (notification.event_id, notification.payment_id, notification.amount_cents) == (
        "n-1",
        "pmt_1",
        1999,
    )


def test_a_status_we_do_not_act_on_is_ignored(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    headers, body = alipay.notification("pmt_1", "paid", trade_status="TRADE_PENDING_SOMETHING")
    assert provider.read_notification(headers, body, time.time()).kind is NotificationKind.IGNORED


def test_the_replay_window_is_300_seconds(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    now = time.time()
    for offset in (-290, 290):
        headers, body = alipay.notification("pmt_1", sent_at=now + offset)
        assert provider.read_notification(headers, body, now).kind is NotificationKind.SUCCEEDED
    for offset in (-310, 310, -86400):
        headers, body = alipay.notification("pmt_1", sent_at=now + offset)
        with pytest.raises(NotificationRefused, match="replay window"):
            provider.read_notification(headers, body, now)


def _replace(body: bytes, field: str, value: str) -> bytes:
    fields = dict(parse_qsl(body.decode()))
    if value:
        fields[field] = value
    else:
        fields.pop(field)
    return urlencode(fields).encode()


def test_forged_notifications_are_refused(alipay: AlipayStandIn, provider: AlipayProvider) -> None:
    create(provider)
    other_private, _ = key_pair()
    headers, forged = alipay.notification("pmt_1", signing_key=other_private)
    _, genuine = alipay.notification("pmt_1")
    tampered = [
        forged,
        _replace(genuine, "total_amount", "0.01"),
        _replace(genuine, "trade_status", "TRADE_SUCCESS").replace(
            b"out_trade_no=pmt_1", b"out_trade_no=pmt_2"
        ),
        _replace(genuine, "sign", ""),
        _replace(genuine, "sign_type", "RSA"),
        _replace(genuine, "sign_type", ""),
        _replace(genuine, "sign", "bm90IGEgc2lnbmF0dXJl"),
        _replace(genuine, "sign", "***"),
        genuine + b"&extra=1",
    ]
    for body in tampered:
        with pytest.raises(NotificationRefused):
            provider.read_notification(headers, body, time.time())


def test_a_genuine_notification_for_another_app_is_a_mismatch(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    headers, body = alipay.notification("pmt_1", app_id="2021000999999999")
    with pytest.raises(NotificationMismatch):
        provider.read_notification(headers, body, time.time())


@pytest.mark.parametrize(
    "fields",
    [
        {"total_amount": "19.9"},
        {"total_amount": "-19.99"},
        {"total_amount": "19.990"},
        {"notify_time": "yesterday"},
        {"notify_id": ""},
        {"out_trade_no": ""},
        {"refund_fee": "19.9"},
        {"charset": "gbk"},
    ],
)
def test_signed_but_unreadable_notifications_are_refused(
    alipay: AlipayStandIn, provider: AlipayProvider, fields: dict[str, str]
) -> None:
    create(provider)
    headers, body = alipay.notification("pmt_1", "paid", **fields)
    with pytest.raises(NotificationRefused):
        provider.read_notification(headers, body, time.time())


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfe\x00", b"not a form", b"a=1&a=2", b"sign=x&sign=y", b"%ZZ=1", b"=&=", b"{}"],
)
def test_garbage_bodies_are_refused(provider: AlipayProvider, body: bytes) -> None:
    with pytest.raises(NotificationRefused):
        provider.read_notification({}, body, time.time())


def test_a_field_given_twice_is_refused_even_when_signed(
    alipay: AlipayStandIn, provider: AlipayProvider
) -> None:
    create(provider)
    headers, body = alipay.notification("pmt_1", "paid")
    with pytest.raises(NotificationRefused, match="twice"):
        provider.read_notification(headers, body + b"&trade_status=TRADE_SUCCESS", time.time())


# -- construction -------------------------------------------------------------------------------


def test_the_adapter_is_built_from_settings_and_keeps_keys_out_of_sight(alipay: AlipayStandIn) -> None:
    settings = alipay.settings()
    adapter = AlipayProvider(settings)
    assert adapter.name == "alipay" and adapter.timeout == (3.05, 10.0)
    assert adapter._client._gateway == alipay.gateway
    assert adapter._client._config.timeout == 10.0
    assert "PRIVATE" not in repr(settings) and "PUBLIC" not in repr(settings)
