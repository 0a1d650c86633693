"""The sandbox adapter against a real HTTP server: the app on SQLite, served by werkzeug.

Each failure the saga must tell apart is produced for real (a closed port, a 500, a 409, a
404, a server too slow to answer), not by mocking `requests`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

import app.sandbox.models  # noqa: F401 - the sandbox's tables must be in the metadata the fixture creates
from app.extension import runtime
from app.payments import (
    PaymentNotFound,
    PaymentStatus,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
    SandboxProvider,
    providers_for,
)
from tests.support.api import bearer
from tests.support.env import SANDBOX_API_KEY

CALLBACK = "http://127.0.0.1:8000/api/v1/payments/webhooks/sandbox"
WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


@pytest.fixture
def serve() -> Iterator[Callable[[WSGIApp], str]]:
    """Serve WSGI apps on free local ports for one test; gives each one's base URL."""
    servers: list[BaseWSGIServer] = []

    def start(wsgi_app: WSGIApp) -> str:
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def provider(app: Flask, serve: Callable[[WSGIApp], str]) -> Iterator[SandboxProvider]:
    client = SandboxProvider(f"{serve(app)}/sandbox", SANDBOX_API_KEY)
    yield client
    client.close()


def create(provider: SandboxProvider, key: str = "order-1", amount_cents: int = 1999) -> ProviderPayment:
    return provider.create_payment(
        reference="ord_1",
        amount_cents=amount_cents,
        currency="CNY",
        callback_url=CALLBACK,
        idempotency_key=key,
        expires_at=datetime.now(UTC) + timedelta(minutes=15),
    )


def test_create_and_get_speak_the_shops_words(app: Flask, provider: SandboxProvider) -> None:
    payment = create(provider)
    assert payment.status is PaymentStatus.PENDING and payment.status == "PENDING"
    assert (payment.amount_cents, payment.currency) == (1999, "CNY")
    assert payment.checkout_url == f"{runtime(app).settings.public_url}/sandbox/checkout/{payment.id}"
    assert provider.get_payment(payment.id) == payment


def test_create_is_safe_to_retry_with_the_same_key(provider: SandboxProvider) -> None:
    assert create(provider, "order-1") == create(provider, "order-1")
    assert create(provider, "order-1") != create(provider, "order-2")


def test_void_and_refund_map_statuses(app: Flask, provider: SandboxProvider) -> None:
    assert provider.void_payment(create(provider, "a").id).status is PaymentStatus.VOIDED

    paid = create(provider, "b")
    # Paying is the buyer's act, not the shop's: the adapter has no call for it.
    app.test_client().post(f"/sandbox/api/payments/{paid.id}/pay", headers=bearer(SANDBOX_API_KEY))
    assert provider.get_payment(paid.id).status is PaymentStatus.SUCCEEDED
    assert provider.refund_payment(paid.id).status is PaymentStatus.REFUNDED


def test_a_conflict_is_rejected_with_the_status_now(provider: SandboxProvider) -> None:
    payment_id = create(provider).id
    provider.void_payment(payment_id)
    with pytest.raises(ProviderRejected) as void_again:
        provider.void_payment(payment_id)
    assert void_again.value.status_now is PaymentStatus.VOIDED
    assert (void_again.value.http_status, void_again.value.code) == (409, "conflict")
    with pytest.raises(ProviderRejected) as refund:
        provider.refund_payment(payment_id)
    assert refund.value.status_now is PaymentStatus.VOIDED


@pytest.mark.parametrize("payment_id", ["sbx_01ARZ3NDEKTSV4RRFFQ69G5FAV", "../../api/payments", "a/b?c#d"])
def test_an_unknown_payment_is_not_found(provider: SandboxProvider, payment_id: str) -> None:
    for call in (provider.get_payment, provider.void_payment, provider.refund_payment):
        with pytest.raises(PaymentNotFound):
            call(payment_id)


def test_a_bad_request_is_rejected_not_retried(provider: SandboxProvider) -> None:
    with pytest.raises(ProviderRejected) as error:
        create(provider, amount_cents=0)
    assert (error.value.http_status, error.value.code, error.value.status_now) == (422, "validation", None)


def test_a_closed_port_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderUnavailable):
        SandboxProvider(f"http://127.0.0.1:{port}/sandbox", SANDBOX_API_KEY).get_payment("sbx_x")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_throttling_are_unavailable(serve: Callable[[WSGIApp], str], status: int) -> None:
    failing = Response('{"detail": "down"}', status=status, mimetype="application/json")
    provider = SandboxProvider(f"{serve(failing)}/sandbox", SANDBOX_API_KEY)
    with pytest.raises(ProviderUnavailable):
        create(provider)
    with pytest.raises(ProviderUnavailable):
        provider.get_payment("sbx_x")


def test_a_wrong_api_key_is_unavailable_not_a_refusal(app: Flask, serve: Callable[[WSGIApp], str]) -> None:
    """Our own misconfiguration must not cancel a buyer's order as if the payment were declined."""
    with pytest.raises(ProviderUnavailable, match="401"):
        create(SandboxProvider(f"{serve(app)}/sandbox", "wrong-key"))


def test_an_unreadable_success_is_unavailable(serve: Callable[[WSGIApp], str]) -> None:
    garbled = Response("<html>gateway</html>", status=200, mimetype="text/html")
    with pytest.raises(ProviderUnavailable):
        SandboxProvider(f"{serve(garbled)}/sandbox", SANDBOX_API_KEY).get_payment("sbx_x")


def test_a_server_too_slow_to_answer_is_unavailable(serve: Callable[[WSGIApp], str]) -> None:
    release = threading.Event()

    @Request.application  # type: ignore[misc]
    def slow(_request: Request) -> Response:
        release.wait(5)
        return Response("{}", mimetype="application/json")

    provider = SandboxProvider(f"{serve(slow)}/sandbox", SANDBOX_API_KEY, timeout=(1.0, 0.2))
    started = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable, match="Timeout"):
            provider.get_payment("sbx_x")
    finally:
        release.set()
    assert time.monotonic() - started < 2


def test_the_idempotency_key_and_api_key_go_on_the_wire(serve: Callable[[WSGIApp], str]) -> None:
    seen: list[tuple[Request, object]] = []

    @Request.application  # type: ignore[misc]
    def recorder(request: Request) -> Response:
        seen.append((request, request.get_json()))
        body = '{"id": "sbx_1", "status": "pending", "amount_cents": 5, "currency": "CNY"}'
        return Response(body, status=201, mimetype="application/json")

    payment = create(SandboxProvider(f"{serve(recorder)}/sandbox", SANDBOX_API_KEY), key="order-9")
    request, body = seen[0]
    assert request.path == "/sandbox/api/payments"
    assert request.headers["Idempotency-Key"] == "order-9"
    assert request.headers["Authorization"] == f"Bearer {SANDBOX_API_KEY}"
    assert body == {
        "amount_cents": 1999,
        "currency": "CNY",
        "callback_url": CALLBACK,
        "reference": "ord_1",
    }
    assert payment.checkout_url is None


def test_providers_for_builds_the_sandbox_adapter_from_settings(app: Flask) -> None:
    settings = runtime(app).settings
    provider = providers_for(settings).default
    assert isinstance(provider, SandboxProvider) and provider.name == "sandbox"
    assert provider.base_url == f"{settings.public_url}/sandbox"
