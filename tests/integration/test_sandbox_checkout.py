"""The sandbox provider's buyer side and its webhooks, in-process on PostgreSQL.

The checkout page settles a payment and records its webhook event in the same transaction, then
redirects (303) to the page's own address, which shows the outcome; the delivery task is only
sent (here: recorded, no worker runs in-process). Deliveries are attempted
by calling the delivery logic directly against a small local HTTP receiver, which sees exactly
what a shop would: the raw body, the signature header, and answers it chooses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.extension import runtime
from app.sandbox import webhooks
from app.sandbox.models import SandboxWebhookDelivery
from app.timeutil import utcnow
from scripts.servers import free_port
from tests.support.api import bearer
from tests.support.env import SANDBOX_API_KEY, WEBHOOK_SECRET

KEY = bearer(SANDBOX_API_KEY)


# -- a task sender that records, and a webhook receiver ----------------------------------------


@dataclass
class Sent:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: bool = False

    def send_task(self, name: str, **options: Any) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.calls.append((name, options))


@pytest.fixture
def sent(app: Flask) -> Sent:
    """The app's Celery app, as the sandbox sees it, replaced by a recorder: no worker runs here."""
    recorder = Sent()
    app.extensions["celery"] = recorder
    return recorder


@dataclass
class Received:
    raw: bytes
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes to give, in order; then 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server_box: dict[str, Any] = {}

    @Request.application  # type: ignore[arg-type]
    def wsgi(request: Request) -> Response:
        box: Receiver = server_box["receiver"]
        box.requests.append(Received(request.get_data(), dict(request.headers), time.time()))
        status = box.answers.pop(0) if box.answers else 200
        return Response(json.dumps({"status": status}), status=status, mimetype="application/json")

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    box = server_box["receiver"] = Receiver(f"http://127.0.0.1:{server.server_port}/webhooks")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


# -- helpers -----------------------------------------------------------------------------------


def create(client: FlaskClient, callback_url: str, **changes: Any) -> dict[str, Any]:
    body = {
        "amount_cents": 3250,
        "currency": "CNY",
        "callback_url": callback_url,
        "reference": "ord_01CHECKOUT",
        **changes,
    }
    response = client.post("/sandbox/api/payments", json=body, headers=KEY)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def status_of(client: FlaskClient, payment_id: str) -> str:
    return str(client.get(f"/sandbox/api/payments/{payment_id}", headers=KEY).get_json()["status"])


def deliveries(app: Flask, payment_id: str | None = None) -> list[SandboxWebhookDelivery]:
    with runtime(app).db.uow() as uow:
        query = select(SandboxWebhookDelivery).order_by(SandboxWebhookDelivery.created_at)
        if payment_id is not None:
            query = query.where(SandboxWebhookDelivery.payment_id == payment_id)
        return list(uow.session.scalars(query))


def delivery(app: Flask, delivery_id: str) -> SandboxWebhookDelivery:
    [row] = [d for d in deliveries(app) if d.id == delivery_id]
    return row


def set_delivery(app: Flask, delivery_id: str, **values: Any) -> None:
    with runtime(app).db.uow() as uow:
        uow.session.execute(
            update(SandboxWebhookDelivery).where(SandboxWebhookDelivery.id == delivery_id).values(**values)
        )
        uow.commit()


def attempt(app: Flask, delivery_id: str) -> webhooks.Attempt:
    return webhooks.attempt_delivery(runtime(app).db, delivery_id, WEBHOOK_SECRET)


def paid(client: FlaskClient, callback_url: str, **changes: Any) -> tuple[dict[str, Any], str]:
    """A payment paid at checkout, and the id of the event it owes the shop."""
    payment = create(client, callback_url, **changes)
    assert client.post(f"/sandbox/checkout/{payment['id']}/pay").status_code == 303
    app = client.application
    [event] = deliveries(app, payment["id"])
    return payment, event.id


def html(response: Any) -> str:
    assert response.mimetype == "text/html"
    return str(response.get_data(as_text=True))


def redirected_to_page(response: Any, payment_id: str) -> str:
    """Assert `response` is a settled post's 303 to the payment's page; return that page's path."""
    assert response.status_code == 303
    assert response.headers["Location"] == f"/sandbox/checkout/{payment_id}"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data() == b""
    return str(response.headers["Location"])


# -- the checkout page -------------------------------------------------------------------------


def test_the_page_shows_amount_reference_status_and_both_buttons(client: FlaskClient) -> None:
    payment = create(client, "http://127.0.0.1:9/hook")
    response = client.get(f"/sandbox/checkout/{payment['id']}")
    assert response.status_code == 200
    page = html(response)
    assert "CNY 32.50" in page
    assert "ord_01CHECKOUT" in page
    assert "pending" in page
    assert ">Pay</button>" in page and ">Decline</button>" in page
    assert f'action="/sandbox/checkout/{payment["id"]}/pay"' in page
    assert f'action="/sandbox/checkout/{payment["id"]}/decline"' in page
    assert page.count('method="post"') == 2
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("amount_cents", "shown"),
    [(1, "CNY 0.01"), (100, "CNY 1.00"), (3250, "CNY 32.50"), (123456789, "CNY 1234567.89")],
)
def test_the_amount_is_shown_in_major_units_with_two_decimals(
    client: FlaskClient, amount_cents: int, shown: str
) -> None:
    payment = create(client, "http://127.0.0.1:9/hook", amount_cents=amount_cents)
    assert shown in html(client.get(f"/sandbox/checkout/{payment['id']}"))


def test_everything_the_shop_sent_is_escaped(client: FlaskClient) -> None:
    payment = create(client, "http://127.0.0.1:9/hook", reference='<script>alert("x")</script> & "co"')
    page = html(client.get(f"/sandbox/checkout/{payment['id']}"))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;co&#34;" in page


@pytest.mark.parametrize("payment_id", ["sbx_01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-an-id", "%00", "x" * 300])
def test_an_unknown_payment_is_a_404_page(client: FlaskClient, sent: Sent, payment_id: str) -> None:
    for response in (
        client.get(f"/sandbox/checkout/{payment_id}"),
        client.post(f"/sandbox/checkout/{payment_id}/pay"),
        client.post(f"/sandbox/checkout/{payment_id}/decline"),
    ):
        assert response.status_code == 404
        assert "Payment not found" in html(response)
    assert sent.calls == []


def test_pay_settles_records_one_event_and_sends_its_task(
    app: Flask, client: FlaskClient, sent: Sent
) -> None:
    payment = create(client, "http://127.0.0.1:9/hook")
    response = client.post(f"/sandbox/checkout/{payment['id']}/pay")
    result = client.get(redirected_to_page(response, payment["id"]))
    assert result.status_code == 200
    page = html(result)
    assert "<h1>Payment received</h1>" in page and "CNY 32.50" in page and "succeeded" in page
    assert ">Pay</button>" not in page and 'method="post"' not in page
    assert status_of(client, payment["id"]) == "succeeded"

    [event] = deliveries(app, payment["id"])
    assert event.id.startswith("evt_") and event.type == "payment.succeeded"
    assert event.callback_url == "http://127.0.0.1:9/hook"
    assert (event.attempts, event.delivered_at, event.last_error) == (0, None, None)
    assert event.payload["created"] == pytest.approx(time.time(), abs=5)
    assert event.payload == {
        "id": event.id,
        "type": "payment.succeeded",
        "created": event.payload["created"],
        "data": {"payment_id": payment["id"], "amount_cents": 3250, "currency": "CNY"},
    }
    assert sent.calls == [
        (
            "sandbox.deliver_webhook",
            {"kwargs": {"delivery_id": event.id}, "queue": "sandbox", "retry": False},
        )
    ]


def test_reloading_the_result_page_only_shows_it_again(app: Flask, client: FlaskClient, sent: Sent) -> None:
    """What the browser does after the 303 and on every reload: a GET, which settles nothing."""
    payment = create(client, "http://127.0.0.1:9/hook")
    first = client.post(f"/sandbox/checkout/{payment['id']}/pay", follow_redirects=True)
    assert [step.status_code for step in first.history] == [303]
    assert first.request.method == "GET" and first.request.path == f"/sandbox/checkout/{payment['id']}"
    assert first.status_code == 200
    shown = html(first)
    assert "<h1>Payment received</h1>" in shown
    assert "Already settled" not in shown
    for _reload in range(2):
        again = client.get(f"/sandbox/checkout/{payment['id']}")
        assert again.status_code == 200 and html(again) == shown
    assert status_of(client, payment["id"]) == "succeeded"
    assert len(deliveries(app, payment["id"])) == 1 and len(sent.calls) == 1


def test_the_result_page_links_back_to_the_shop(client: FlaskClient, sent: Sent) -> None:
    """The way back is the callback URL's origin: the shop's site, never its webhook's path."""
    pending = create(client, "http://127.0.0.1:8000/api/v1/payments/webhooks/sandbox")
    assert "Back to the shop" not in html(client.get(f"/sandbox/checkout/{pending['id']}"))
    for verb in ("pay", "decline"):
        payment = create(client, "http://127.0.0.1:8000/api/v1/payments/webhooks/sandbox")
        response = client.post(f"/sandbox/checkout/{payment['id']}/{verb}")
        page = html(client.get(redirected_to_page(response, payment["id"])))
        assert '<a href="http://127.0.0.1:8000/">Back to the shop</a>' in page
        assert "/webhooks/" not in page


@pytest.mark.parametrize(
    ("callback_url", "shop_url"),
    [
        ("https://shop.example/hooks/sandbox?x=1#y", "https://shop.example/"),
        ("https://hook:s3cret@Shop.Example:8443/hooks", "https://shop.example:8443/"),
        ("http://[::1]:8000/hook", "http://[::1]:8000/"),
    ],
)
def test_the_link_back_carries_scheme_host_and_port_only(
    client: FlaskClient, sent: Sent, callback_url: str, shop_url: str
) -> None:
    payment = create(client, callback_url)
    client.post(f"/sandbox/checkout/{payment['id']}/pay")
    page = html(client.get(f"/sandbox/checkout/{payment['id']}"))
    assert f'<a href="{shop_url}">Back to the shop</a>' in page
    assert "s3cret" not in page and "hooks" not in page


def test_a_second_submission_is_a_409_page_and_no_second_event(
    app: Flask, client: FlaskClient, sent: Sent
) -> None:
    """A form posted again from a stale page (another tab, an old history entry)."""
    payment = create(client, "http://127.0.0.1:9/hook")
    assert client.post(f"/sandbox/checkout/{payment['id']}/pay").status_code == 303
    for verb in ("pay", "decline"):
        again = client.post(f"/sandbox/checkout/{payment['id']}/{verb}")
        assert again.status_code == 409
        page = html(again)
        assert "Already settled" in page and "This payment is already succeeded" in page
        assert '<a href="http://127.0.0.1:9/">Back to the shop</a>' in page
    assert status_of(client, payment["id"]) == "succeeded"
    assert len(deliveries(app, payment["id"])) == 1 and len(sent.calls) == 1
    page = html(client.get(f"/sandbox/checkout/{payment['id']}"))
    assert "<h1>Payment received</h1>" in page and ">Pay</button>" not in page


def test_decline_fails_the_payment_and_announces_it(app: Flask, client: FlaskClient, sent: Sent) -> None:
    payment = create(client, "http://127.0.0.1:9/hook")
    response = client.post(f"/sandbox/checkout/{payment['id']}/decline")
    page = html(client.get(redirected_to_page(response, payment["id"])))
    assert "<h1>Payment declined</h1>" in page and "failed" in page
    assert status_of(client, payment["id"]) == "failed"
    [event] = deliveries(app, payment["id"])
    assert event.type == "payment.failed" and event.payload["type"] == "payment.failed"
    assert [call[1]["kwargs"] for call in sent.calls] == [{"delivery_id": event.id}]
    assert client.post(f"/sandbox/checkout/{payment['id']}/pay").status_code == 409


def test_a_voided_payment_cannot_be_paid(app: Flask, client: FlaskClient, sent: Sent) -> None:
    payment = create(client, "http://127.0.0.1:9/hook")
    assert client.post(f"/sandbox/api/payments/{payment['id']}/void", headers=KEY).status_code == 200
    response = client.post(f"/sandbox/checkout/{payment['id']}/pay")
    assert response.status_code == 409 and "This payment is already voided" in html(response)
    assert deliveries(app, payment["id"]) == [] and sent.calls == []
    page = html(client.get(f"/sandbox/checkout/{payment['id']}"))
    assert "<h1>Payment cancelled</h1>" in page and ">Pay</button>" not in page


def test_a_broker_that_cannot_take_the_task_does_not_fail_the_buyer(
    app: Flask, client: FlaskClient, sent: Sent
) -> None:
    sent.fail = True
    payment = create(client, "http://127.0.0.1:9/hook")
    response = client.post(f"/sandbox/checkout/{payment['id']}/pay")
    assert "Payment received" in html(client.get(redirected_to_page(response, payment["id"])))
    assert status_of(client, payment["id"]) == "succeeded"
    [event] = deliveries(app, payment["id"])
    assert event.delivered_at is None  # the redelivery sweep sends it later


def test_a_broker_that_is_down_costs_one_failed_connect_not_retries() -> None:
    from celery import Celery

    dead = Celery("dead-broker", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    started = time.monotonic()
    assert webhooks.dispatch(["evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "evt_01ARZ3NDEKTSV4RRFFQ69G5FAW"], dead) == 0
    assert time.monotonic() - started < 1.5


def test_a_cross_site_form_post_is_refused(app: Flask, client: FlaskClient, sent: Sent) -> None:
    payment = create(client, "http://127.0.0.1:9/hook")
    for origin in ("https://evil.example", "null", "http://localhost.evil.example"):
        response = client.post(f"/sandbox/checkout/{payment['id']}/pay", headers={"Origin": origin})
        assert response.status_code == 403 and "Not allowed" in html(response)
    assert status_of(client, payment["id"]) == "pending" and deliveries(app) == []
    own = client.post(f"/sandbox/checkout/{payment['id']}/pay", headers={"Origin": "http://localhost"})
    redirected_to_page(own, payment["id"])


def test_the_api_announces_pay_decline_and_refund_but_not_void(
    app: Flask, client: FlaskClient, sent: Sent
) -> None:
    payment = create(client, "http://127.0.0.1:9/hook")
    assert client.post(f"/sandbox/api/payments/{payment['id']}/pay", headers=KEY).status_code == 200
    refunded = client.post(f"/sandbox/api/payments/{payment['id']}/refund", headers=KEY)
    assert refunded.status_code == 200 and refunded.get_json()["status"] == "refunded"
    declined = create(client, "http://127.0.0.1:9/hook")
    assert client.post(f"/sandbox/api/payments/{declined['id']}/decline", headers=KEY).status_code == 200
    voided = create(client, "http://127.0.0.1:9/hook")
    assert client.post(f"/sandbox/api/payments/{voided['id']}/void", headers=KEY).status_code == 200

    assert [(d.payment_id, d.type) for d in deliveries(app)] == [
        (payment["id"], "payment.succeeded"),
        (payment["id"], "refund.succeeded"),
        (declined["id"], "payment.failed"),
    ]
    refund = deliveries(app)[1]
    assert refund.payload["data"] == {"payment_id": payment["id"], "amount_cents": 3250, "currency": "CNY"}
    assert [call[1]["kwargs"]["delivery_id"] for call in sent.calls] == [d.id for d in deliveries(app)]
    # A refused refund records nothing.
    assert client.post(f"/sandbox/api/payments/{payment['id']}/refund", headers=KEY).status_code == 409
    assert len(deliveries(app)) == 3


# -- delivery ----------------------------------------------------------------------------------


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.sign("secret", body, 1700000000) == f"t=1700000000,v1={expected}"


def test_a_delivery_posts_the_signed_event_and_is_marked_delivered(
    app: Flask, client: FlaskClient, sent: Sent, receiver: Receiver
) -> None:
    payment, event_id = paid(client, receiver.url)
    result = attempt(app, event_id)
    assert (result.outcome, result.attempts, result.status_code) == ("delivered", 1, 200)

    [got] = receiver.requests
    assert got.headers["Content-Type"] == "application/json"
    fields = dict(part.split("=", 1) for part in got.headers["Sandbox-Signature"].split(","))
    assert fields.keys() == {"t", "v1"}
    assert abs(int(fields["t"]) - got.at) <= 5
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{fields['t']}.".encode() + got.raw, hashlib.sha256)
    assert hmac.compare_digest(fields["v1"], expected.hexdigest())
    body = json.loads(got.raw)
    assert body == {
        "id": event_id,
        "type": "payment.succeeded",
        "created": body["created"],
        "data": {"payment_id": payment["id"], "amount_cents": 3250, "currency": "CNY"},
    }
    assert isinstance(body["created"], int) and abs(body["created"] - time.time()) <= 5

    row = delivery(app, event_id)
    assert row.delivered_at is not None and row.attempts == 1 and row.last_status_code == 200
    # Delivered is final: a duplicate message sends nothing.
    assert attempt(app, event_id).outcome == "skipped"
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("first_answer", [500, 503, 404, 422, 302])
def test_anything_but_a_2xx_is_retried_with_backoff_then_delivered(
    app: Flask, client: FlaskClient, sent: Sent, receiver: Receiver, first_answer: int
) -> None:
    receiver.answers = [first_answer, 200]
    _payment, event_id = paid(client, receiver.url)

    first = attempt(app, event_id)
    assert (first.outcome, first.attempts, first.status_code) == ("retry", 1, first_answer)
    assert first.retry_in is not None and 1 <= first.retry_in <= 2
    row = delivery(app, event_id)
    assert row.delivered_at is None and row.last_status_code == first_answer
    assert row.last_error is not None and row.last_error.startswith(f"HTTP {first_answer}")
    assert row.next_attempt_at > utcnow()

    # Not yet due: a message arriving early (a duplicate) does nothing.
    set_delivery(app, event_id, next_attempt_at=utcnow() + timedelta(seconds=60))
    assert attempt(app, event_id).outcome == "skipped"

    set_delivery(app, event_id, next_attempt_at=utcnow())  # the back-off has passed
    second = attempt(app, event_id)
    assert (second.outcome, second.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].raw == receiver.requests[1].raw  # the same event, byte for byte
    row = delivery(app, event_id)
    assert row.delivered_at is not None and row.last_error is None


def test_a_connection_error_is_retried(app: Flask, client: FlaskClient, sent: Sent) -> None:
    _payment, event_id = paid(client, f"http://127.0.0.1:{free_port()}/nobody-listens")
    result = attempt(app, event_id)
    assert result.outcome == "retry" and result.status_code is None
    assert result.error is not None and result.error.startswith("ConnectionError")
    assert delivery(app, event_id).last_error == result.error[:1000]


def test_the_backoff_grows_exponentially_to_a_cap_with_full_jitter() -> None:
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (6, 64), (9, 300), (25, 300)]:
        waits = [webhooks.backoff(attempts) for _ in range(200)]
        assert all(1 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # jittered across the range, not fixed
    assert webhooks.MAX_RETRIES == 25


def test_it_gives_up_after_the_last_attempt(
    app: Flask, client: FlaskClient, sent: Sent, receiver: Receiver
) -> None:
    receiver.answers = [500]
    _payment, event_id = paid(client, receiver.url)
    set_delivery(app, event_id, attempts=webhooks.MAX_ATTEMPTS - 1)
    result = attempt(app, event_id)
    assert (result.outcome, result.attempts) == ("gave-up", webhooks.MAX_ATTEMPTS)
    set_delivery(app, event_id, next_attempt_at=utcnow() - timedelta(hours=1))
    assert attempt(app, event_id).outcome == "skipped"
    assert webhooks.overdue(runtime(app).db) == []
    assert len(receiver.requests) == 1


def test_the_sweep_resends_only_deliveries_well_past_due(
    app: Flask, client: FlaskClient, sent: Sent, receiver: Receiver
) -> None:
    _p1, lost = paid(client, receiver.url)
    _p2, fresh = paid(client, receiver.url)
    _p3, done = paid(client, receiver.url)
    _p4, backing_off = paid(client, receiver.url)
    long_ago = utcnow() - timedelta(seconds=31)
    set_delivery(app, lost, next_attempt_at=long_ago)
    set_delivery(app, done, next_attempt_at=long_ago, delivered_at=utcnow())
    set_delivery(app, backing_off, attempts=3, next_attempt_at=utcnow() + timedelta(seconds=100))
    assert fresh

    assert webhooks.overdue(runtime(app).db) == [lost]
    assert webhooks.overdue(runtime(app).db) == []  # marked due now: not sent twice in a row
    assert delivery(app, lost).next_attempt_at > long_ago

    set_delivery(app, lost, next_attempt_at=long_ago)
    sent.calls.clear()
    with app.app_context():
        assert webhooks.redeliver(runtime(app).db) == 1  # the body of the sandbox.redeliver_pending task
    assert [call[1]["kwargs"] for call in sent.calls] == [{"delivery_id": lost}]
    assert attempt(app, lost).outcome == "delivered"
