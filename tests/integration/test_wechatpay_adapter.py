"""The WeChat Pay adapter against the local stand-in of WeChat Pay API v3, over real HTTP.

Neither PostgreSQL nor Redis: only the adapter, the SDK and the stand-in's HTTP server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from requests.structures import CaseInsensitiveDict
from werkzeug.wrappers import Request, Response

from app.payments.port import (
    Notification,
    NotificationKind,
    NotificationMismatch,
    NotificationRefused,
    PaymentNotFound,
    PaymentStatus,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
)
from app.payments.wechatpay import WechatpayProvider
from tests.support.standins.server import StandInServer
from tests.support.standins.wechatpay import Forgery, StandinKeys, WechatpayStandin

CALLBACK = "https://shop.example/api/v1/payments/webhooks/wechatpay"
DEADLINE = datetime(2031, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
SHORT = (0.5, 0.5)


@pytest.fixture(scope="module")
def keys() -> StandinKeys:
    return StandinKeys.generate()


@pytest.fixture(params=["public_key", "certificate"])
def any_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def wechat(keys: StandinKeys) -> Iterator[WechatpayStandin]:
    with WechatpayStandin(keys=keys) as standin:
        yield standin


@pytest.fixture
def provider(wechat: WechatpayStandin) -> Iterator[WechatpayProvider]:
    adapter = WechatpayProvider(wechat.settings(), timeout=SHORT)
    yield adapter
    adapter.close()


def create(
    provider: WechatpayProvider, key: str = "pmt_01J0000000000000000000000A", **changes: Any
) -> ProviderPayment:
    arguments: dict[str, Any] = {
        "reference": "ord_01J0000000000000000000000B",
        "amount_cents": 1234,
        "currency": "CNY",
        "callback_url": CALLBACK,
        "idempotency_key": key,
        "expires_at": DEADLINE,
    }
    arguments.update(changes)
    return provider.create_payment(**arguments)


class Receiver:
    """The shop's webhook as far as the adapter goes: read, then answer 200 (or refuse)."""

    def __init__(self, provider: WechatpayProvider, failures: int = 0) -> None:
        self.provider = provider
        self.failures = failures
        self.notifications: list[Notification] = []
        self.server = StandInServer(self.wsgi, "wechatpay-webhook")
        self.url = f"{self.server.url}/api/v1/payments/webhooks/wechatpay"

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if self.failures:
            self.failures -= 1
            return Response(status=503)(environ, start_response)
        try:
            # werkzeug's EnvironHeaders, as in the shop: case-insensitive, if not typed a Mapping.
            headers = cast("Mapping[str, str]", request.headers)
            self.notifications.append(
                self.provider.read_notification(headers, request.get_data(), time.time())
            )
        except (NotificationRefused, NotificationMismatch):
            return Response(status=400)(environ, start_response)
        return Response('{"code":"SUCCESS"}', content_type="application/json")(environ, start_response)

    def wait_for(self, count: int, seconds: float = 10.0) -> list[Notification]:
        deadline = time.monotonic() + seconds
        while len(self.notifications) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.notifications


@pytest.fixture
def receiver(provider: WechatpayProvider) -> Iterator[Receiver]:
    webhook = Receiver(provider, failures=1)
    webhook.server.start()
    yield webhook
    webhook.server.stop()


# -- create ------------------------------------------------------------------------------------


def test_create_gives_the_code_url_and_tells_wechat_pay_the_deadline(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    assert wechat.requests == []  # nothing was fetched when the adapter was built
    payment = create(provider)
    order = wechat.order("pmt_01J0000000000000000000000A")
    assert payment == ProviderPayment(
        id="pmt_01J0000000000000000000000A",
        status=PaymentStatus.PENDING,
        amount_cents=1234,
        currency="CNY",
        checkout_url=order.code_url,
    )
    assert payment.checkout_url and payment.checkout_url.startswith("weixin://wxpay/bizpayurl?pr=")
    [sent] = wechat.requests_to("POST", "/v3/pay/transactions/native")
    assert sent.body["time_expire"] == "2031-01-02T11:04:05+08:00"
    assert sent.body["notify_url"] == CALLBACK
    assert sent.body["amount"] == {"total": 1234, "currency": "CNY"}
    assert (sent.body["mchid"], sent.body["appid"]) == (wechat.mchid, wechat.appid)
    assert sent.body["description"] == "Order ord_01J0000000000000000000000B"


def test_the_same_idempotency_key_again_is_the_same_payment(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    first, again = create(provider), create(provider)
    assert first == again
    assert list(wechat.orders) == [first.id]
    assert len(wechat.requests_to("POST", "/v3/pay/transactions/native")) == 2


def test_the_same_key_with_other_parameters_is_refused(provider: WechatpayProvider) -> None:
    create(provider)
    with pytest.raises(ProviderRejected) as refused:
        create(provider, amount_cents=999)
    assert (refused.value.code, refused.value.http_status) == ("OUT_TRADE_NO_USED", 400)


def test_a_currency_other_than_cny_is_refused_before_any_call(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    with pytest.raises(ProviderRejected):
        create(provider, currency="USD")
    assert wechat.requests == []


def test_creating_an_order_that_was_paid_says_so(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    payment = create(provider)
    wechat.pay(payment.id, notify=False)
    with pytest.raises(ProviderRejected) as refused:
        create(provider)
    assert refused.value.status_now is PaymentStatus.SUCCEEDED


# -- get ---------------------------------------------------------------------------------------


def _refund(wechat: WechatpayStandin, provider: WechatpayProvider, payment_id: str) -> None:
    wechat.pay(payment_id, notify=False)
    provider.refund_payment(payment_id)


SCRIPTS: dict[str, tuple[Callable[[WechatpayStandin, WechatpayProvider, str], Any], PaymentStatus]] = {
    "NOTPAY": (lambda wechat, provider, payment_id: None, PaymentStatus.PENDING),
    "USERPAYING": (lambda wechat, provider, p: wechat.start_paying(p), PaymentStatus.PENDING),
    "SUCCESS": (lambda wechat, provider, p: wechat.pay(p, notify=False), PaymentStatus.SUCCEEDED),
    "PAYERROR": (lambda wechat, provider, p: wechat.fail(p), PaymentStatus.FAILED),
    "CLOSED": (lambda wechat, provider, p: provider.void_payment(p), PaymentStatus.VOIDED),
    "REFUND": (_refund, PaymentStatus.REFUNDED),
}


@pytest.mark.parametrize("state", list(SCRIPTS))
def test_get_payment_maps_each_trade_state(
    wechat: WechatpayStandin, provider: WechatpayProvider, state: str
) -> None:
    payment = create(provider)
    script, expected = SCRIPTS[state]
    script(wechat, provider, payment.id)
    assert wechat.order(payment.id).trade_state == state
    got = provider.get_payment(payment.id)
    assert (got.id, got.status, got.amount_cents, got.currency) == (payment.id, expected, 1234, "CNY")
    [query] = wechat.requests_to("GET", f"/v3/pay/transactions/out-trade-no/{payment.id}")[-1:]
    assert query.query == {"mchid": wechat.mchid}


def test_an_unknown_payment_is_not_found(provider: WechatpayProvider) -> None:
    with pytest.raises(PaymentNotFound):
        provider.get_payment("pmt_01J000000000000000000000ZZ")


# -- void --------------------------------------------------------------------------------------


def test_void_closes_then_queries(wechat: WechatpayStandin, provider: WechatpayProvider) -> None:
    payment = create(provider)
    voided = provider.void_payment(payment.id)
    assert voided.status is PaymentStatus.VOIDED
    calls = [(r.method, r.path) for r in wechat.requests[1:]]
    base = f"/v3/pay/transactions/out-trade-no/{payment.id}"
    assert calls == [("POST", f"{base}/close"), ("GET", base)]
    assert wechat.requests[1].body == {"mchid": wechat.mchid}


@pytest.mark.parametrize("close_answer", [204, "ORDERPAID"])
def test_void_racing_the_buyer_reports_the_payment_paid(
    wechat: WechatpayStandin, provider: WechatpayProvider, close_answer: int | str
) -> None:
    payment = create(provider)
    wechat.pay_when_closed(payment.id, answer=close_answer)
    with pytest.raises(ProviderRejected) as refused:
        provider.void_payment(payment.id)
    assert refused.value.status_now is PaymentStatus.SUCCEEDED
    assert wechat.order(payment.id).trade_state == "SUCCESS"


def test_void_of_a_refunded_payment_says_paid_and_the_refund_says_when_it_is_done(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    """trade_state REFUND means a refund was started, not that the money is back: the void
    reports the payment paid, and the refund under the same number says whether it is final."""
    payment = create(provider)
    wechat.refunds_stay_processing(2)
    wechat.pay(payment.id, notify=False)
    with pytest.raises(ProviderUnavailable):
        provider.refund_payment(payment.id)  # started, still processing
    with pytest.raises(ProviderRejected) as refused:
        provider.void_payment(payment.id)
    assert refused.value.status_now is PaymentStatus.SUCCEEDED
    assert provider.refund_payment(payment.id).status is PaymentStatus.REFUNDED
    assert len(wechat.refunds) == 1


def test_void_while_the_buyer_is_paying_is_retried(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    payment = create(provider)
    wechat.start_paying(payment.id)
    with pytest.raises(ProviderUnavailable):
        provider.void_payment(payment.id)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_void_failing_at_the_close_or_at_the_query_is_retried(
    wechat: WechatpayStandin, provider: WechatpayProvider, method: str
) -> None:
    payment = create(provider)
    wechat.fail_next(1, 503, method=method)
    with pytest.raises(ProviderUnavailable):
        provider.void_payment(payment.id)
    assert provider.void_payment(payment.id).status is PaymentStatus.VOIDED


def test_void_of_an_unknown_payment_is_not_found(provider: WechatpayProvider) -> None:
    with pytest.raises(PaymentNotFound):
        provider.void_payment("pmt_01J000000000000000000000ZZ")


# -- refund ------------------------------------------------------------------------------------


def test_refund_final_at_once(wechat: WechatpayStandin, provider: WechatpayProvider) -> None:
    payment = create(provider)
    wechat.pay(payment.id, notify=False)
    refunded = provider.refund_payment(payment.id)
    assert refunded == ProviderPayment(payment.id, PaymentStatus.REFUNDED, 1234, "CNY")
    [sent] = wechat.requests_to("POST", "/v3/refund/domestic/refunds")
    assert sent.body["out_trade_no"] == payment.id
    assert sent.body["out_refund_no"] == f"{payment.id}-refund"
    assert sent.body["amount"] == {"refund": 1234, "total": 1234, "currency": "CNY"}
    assert wechat.refund(f"{payment.id}-refund").status == "SUCCESS"


def test_refund_in_progress_is_asked_again_with_the_same_number(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    payment = create(provider)
    wechat.pay(payment.id, notify=False)
    wechat.refunds_stay_processing(2)
    with pytest.raises(ProviderUnavailable):
        provider.refund_payment(payment.id)
    assert provider.refund_payment(payment.id).status is PaymentStatus.REFUNDED
    numbers = [r.body["out_refund_no"] for r in wechat.requests_to("POST", "/v3/refund/domestic/refunds")]
    assert numbers == [f"{payment.id}-refund"] * 2
    assert len(wechat.requests_to("GET", "/v3/refund/domestic/refunds/")) == 2
    assert list(wechat.refunds) == [f"{payment.id}-refund"]


def test_refund_of_a_refunded_payment_is_refunded(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    payment = create(provider)
    _refund(wechat, provider, payment.id)
    assert provider.refund_payment(payment.id).status is PaymentStatus.REFUNDED
    assert len(wechat.refunds) == 1


@pytest.mark.parametrize("final", ["ABNORMAL", "CLOSED"])
def test_refund_needing_an_operator_is_rejected(
    wechat: WechatpayStandin, provider: WechatpayProvider, final: str
) -> None:
    payment = create(provider)
    wechat.pay(payment.id, notify=False)
    wechat.refunds_stay_processing(0, final=final)
    with pytest.raises(ProviderRejected) as refused:
        provider.refund_payment(payment.id)
    assert refused.value.code == final


def test_refund_of_an_unpaid_payment_is_rejected(
    wechat: WechatpayStandin, provider: WechatpayProvider
) -> None:
    payment = create(provider)
    with pytest.raises(ProviderRejected) as refused:
        provider.refund_payment(payment.id)
    assert refused.value.status_now is PaymentStatus.PENDING
    assert wechat.requests_to("POST", "/v3/refund/domestic/refunds") == []


def test_refund_of_an_unknown_payment_is_not_found(provider: WechatpayProvider) -> None:
    with pytest.raises(PaymentNotFound):
        provider.refund_payment("pmt_01J000000000000000000000ZZ")


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "SYSTEM_ERROR"),
        (502, "BAD_GATEWAY"),
        (429, "FREQUENCY_LIMITED"),
        (401, "SIGN_ERROR"),
        (400, "SYSTEM_ERROR"),
    ],
)
def test_outages_are_unavailable(
    wechat: WechatpayStandin, provider: WechatpayProvider, status: int, code: str
) -> None:
    wechat.fail_next(1, status, code)
    with pytest.raises(ProviderUnavailable):
        create(provider)
    assert wechat.orders == {}
    create(provider)  # and the retry goes through


def test_a_business_refusal_is_rejected(wechat: WechatpayStandin, provider: WechatpayProvider) -> None:
    wechat.fail_next(1, 400, "PARAM_ERROR")
    with pytest.raises(ProviderRejected) as refused:
        create(provider)
    assert (refused.value.code, refused.value.http_status) == ("PARAM_ERROR", 400)


def test_a_hanging_provider_times_out(wechat: WechatpayStandin, provider: WechatpayProvider) -> None:
    wechat.hang_next(1, seconds=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        create(provider)
    assert time.monotonic() - started < 0.9
    # WeChat Pay made the order after all; asking again with the same key finds it.
    deadline = time.monotonic() + 5
    while not wechat.orders and time.monotonic() < deadline:
        time.sleep(0.02)
    assert create(provider).checkout_url == wechat.order("pmt_01J0000000000000000000000A").code_url
    assert len(wechat.orders) == 1


@pytest.mark.parametrize("how", ["signature", "serial"])
def test_an_answer_not_signed_by_wechat_pay_is_unavailable(
    wechat: WechatpayStandin, provider: WechatpayProvider, how: str
) -> None:
    payment = create(provider)
    wechat.pay(payment.id, notify=False)
    wechat.tamper_next(1, how)
    with pytest.raises(ProviderUnavailable):
        provider.get_payment(payment.id)
    assert wechat.requests_to("GET", "/v3/certificates") == []


def test_our_own_wrong_key_is_unavailable(wechat: WechatpayStandin, keys: StandinKeys) -> None:
    other = keys.other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    adapter = WechatpayProvider(wechat.settings(private_key=other.decode()), timeout=SHORT)
    with pytest.raises(ProviderUnavailable, match="401"):
        create(adapter)


def test_no_connection_is_unavailable(wechat: WechatpayStandin) -> None:
    settings = wechat.settings()
    wechat.stop()
    adapter = WechatpayProvider(settings, timeout=SHORT)
    with pytest.raises(ProviderUnavailable):
        adapter.get_payment("pmt_01J0000000000000000000000A")


def test_certificate_mode_verifies_answers(keys: StandinKeys) -> None:
    with WechatpayStandin(mode="certificate", keys=keys) as wechat:
        assert "BEGIN CERTIFICATE" in wechat.settings().public_key
        adapter = WechatpayProvider(wechat.settings(), timeout=SHORT)
        payment = create(adapter)
        wechat.pay(payment.id, notify=False)
        assert adapter.get_payment(payment.id).status is PaymentStatus.SUCCEEDED
        wechat.tamper_next(1, "signature")
        with pytest.raises(ProviderUnavailable):
            adapter.get_payment(payment.id)


# -- notifications -----------------------------------------------------------------------------


def test_the_payment_notification_reaches_the_notify_url(
    wechat: WechatpayStandin, provider: WechatpayProvider, receiver: Receiver
) -> None:
    payment = create(provider, callback_url=receiver.url)
    delivery = wechat.pay(payment.id)
    assert delivery is not None
    [notification] = receiver.wait_for(1)
    assert notification == Notification(
        event_id=delivery.event_id,
        kind=NotificationKind.SUCCEEDED,
        payment_id=payment.id,
        provider_payment_id=payment.id,
        amount_cents=1234,
        currency="CNY",
    )
    assert delivery.wait(5) and delivery.statuses == [503, 200]  # retried after the first failure


@pytest.fixture
def moded(keys: StandinKeys, any_mode: str) -> Iterator[tuple[WechatpayStandin, WechatpayProvider, str]]:
    with WechatpayStandin(mode=any_mode, keys=keys) as wechat:
        adapter = WechatpayProvider(wechat.settings(), timeout=SHORT)
        payment = create(adapter)
        wechat.pay(payment.id, notify=False)
        yield wechat, adapter, payment.id


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("TRANSACTION.SUCCESS", NotificationKind.SUCCEEDED),
        ("REFUND.SUCCESS", NotificationKind.REFUNDED),
        ("REFUND.ABNORMAL", NotificationKind.IGNORED),
        ("REFUND.CLOSED", NotificationKind.IGNORED),
        ("MCHTRANSFER.BILL.FINISHED", NotificationKind.IGNORED),
    ],
)
def test_each_kind_of_notification(
    moded: tuple[WechatpayStandin, WechatpayProvider, str], event_type: str, kind: NotificationKind
) -> None:
    wechat, adapter, payment_id = moded
    headers, raw = wechat.notification(payment_id, event_type)
    notification = adapter.read_notification(CaseInsensitiveDict(headers), raw, time.time())
    assert notification.kind is kind
    assert notification.payment_id == notification.provider_payment_id == payment_id
    assert notification.event_id.startswith("EV-")
    acted_on = kind is not NotificationKind.IGNORED
    expected = (1234, "CNY") if acted_on else (None, None)
    assert (notification.amount_cents, notification.currency) == expected


def test_a_partial_refund_is_not_a_refund(moded: tuple[WechatpayStandin, WechatpayProvider, str]) -> None:
    wechat, adapter, payment_id = moded
    partial = {"amount": {"total": 1234, "refund": 1000, "payer_total": 1234, "payer_refund": 1000}}
    headers, raw = wechat.notification(payment_id, "REFUND.SUCCESS", resource=partial)
    notification = adapter.read_notification(CaseInsensitiveDict(headers), raw, time.time())
    assert notification.kind is NotificationKind.IGNORED


def test_lower_case_header_names_are_read(moded: tuple[WechatpayStandin, WechatpayProvider, str]) -> None:
    wechat, adapter, payment_id = moded
    headers, raw = wechat.notification(payment_id)
    lower = CaseInsensitiveDict({name.lower(): value for name, value in headers.items()})
    assert adapter.read_notification(lower, raw, time.time()).kind is NotificationKind.SUCCEEDED


def _forged(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    return wechat.notification(payment_id, forgery=Forgery(sign_with=wechat.keys.other_key))


def _stale(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    return wechat.notification(payment_id, forgery=Forgery(timestamp=int(time.time()) - 301))


def _from_the_future(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    return wechat.notification(payment_id, forgery=Forgery(timestamp=int(time.time()) + 301))


def _other_serial(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    return wechat.notification(payment_id, forgery=Forgery(serial="PUB_KEY_ID_0114999999999999999999"))


def _probe(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    headers, raw = wechat.notification(payment_id)
    return {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}, raw


def _body_changed(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    headers, raw = wechat.notification(payment_id)
    return headers, raw.replace(b"TRANSACTION.SUCCESS", b"REFUND.SUCCESS")


def _unsigned(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    _, raw = wechat.notification(payment_id)
    return {"Content-Type": "application/json"}, raw


def _signed_garbage(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    return wechat.signed_headers(b"not json {"), b"not json {"


def _signed_not_utf8(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    return wechat.signed_headers(b"{}"), b"\xff\xfe{}"


def _signed_without_resource(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    raw = b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource_type":"encrypt-resource"}'
    return wechat.signed_headers(raw), raw


def _huge_timestamp(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    headers, raw = wechat.notification(payment_id)
    return {**headers, "Wechatpay-Timestamp": "9" * 400}, raw


def _other_apiv3_key(wechat: WechatpayStandin, payment_id: str) -> tuple[dict[str, str], bytes]:
    return wechat.notification(payment_id, forgery=Forgery(apiv3_key="0" * 32))


REFUSED = {
    _forged: "signature does not verify",
    _stale: "replay window",
    _from_the_future: "replay window",
    _other_serial: "unknown key serial",
    _probe: "probe",
    _body_changed: "signature does not verify",
    _unsigned: "headers missing",
    _signed_garbage: "unreadable",
    _signed_not_utf8: "not UTF-8",
    _signed_without_resource: "no resource",
    _other_apiv3_key: "no resource",
    _huge_timestamp: "unreadable timestamp",
}


@pytest.mark.parametrize("make", list(REFUSED), ids=[make.__name__.strip("_") for make in REFUSED])
def test_notifications_not_proven_now_are_refused(
    moded: tuple[WechatpayStandin, WechatpayProvider, str],
    make: Callable[[WechatpayStandin, str], tuple[dict[str, str], bytes]],
) -> None:
    wechat, adapter, payment_id = moded
    headers, raw = make(wechat, payment_id)
    with pytest.raises(NotificationRefused, match=REFUSED[make]):
        adapter.read_notification(CaseInsensitiveDict(headers), raw, time.time())


def test_a_notification_within_the_replay_window_is_read_and_outside_refused(
    moded: tuple[WechatpayStandin, WechatpayProvider, str],
) -> None:
    wechat, adapter, payment_id = moded
    headers, raw = wechat.notification(payment_id)
    sent = int(headers["Wechatpay-Timestamp"])
    assert adapter.read_notification(headers, raw, sent + 299).kind is NotificationKind.SUCCEEDED
    with pytest.raises(NotificationRefused):
        adapter.read_notification(headers, raw, sent + 301)  # the same one replayed later


@pytest.mark.parametrize(
    ("event_type", "change"),
    [
        ("TRANSACTION.SUCCESS", {"mchid": "1900000999"}),
        ("TRANSACTION.SUCCESS", {"appid": "wx0000000000000000"}),
        ("REFUND.SUCCESS", {"mchid": "1900000999"}),
    ],
)
def test_a_genuine_notification_for_another_merchant_is_a_mismatch(
    moded: tuple[WechatpayStandin, WechatpayProvider, str], event_type: str, change: dict[str, str]
) -> None:
    wechat, adapter, payment_id = moded
    headers, raw = wechat.notification(payment_id, event_type, resource=change)
    with pytest.raises(NotificationMismatch):
        adapter.read_notification(headers, raw, time.time())


def test_amounts_are_read_as_fen_without_conversion(
    moded: tuple[WechatpayStandin, WechatpayProvider, str],
) -> None:
    wechat, adapter, payment_id = moded
    amount = {"total": 100001, "payer_total": 100001, "currency": "cny", "payer_currency": "CNY"}
    headers, raw = wechat.notification(payment_id, resource={"amount": amount})
    notification = adapter.read_notification(headers, raw, time.time())
    assert (notification.amount_cents, notification.currency) == (100001, "CNY")
    headers, raw = wechat.notification(payment_id, resource={"amount": {"total": "1.00"}})
    with pytest.raises(NotificationRefused):
        adapter.read_notification(headers, raw, time.time())
