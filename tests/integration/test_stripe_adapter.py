"""The Stripe adapter against the local stand-in of Stripe, over real HTTP, through the SDK."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from app.payment_settings import StripeSettings
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
from app.payments.stripe_checkout import StripeProvider
from tests.support.standins.stripe import StripeStandIn, WebhookSink

CALLBACK = "https://shop.example/api/v1/payments/webhooks/stripe"
TIMEOUT = (0.5, 0.5)


@pytest.fixture
def stand_in() -> Iterator[StripeStandIn]:
    with StripeStandIn(hang_seconds=1.5) as stand_in:
        yield stand_in


@pytest.fixture
def provider(stand_in: StripeStandIn) -> Iterator[StripeProvider]:
    provider = StripeProvider(stand_in.settings(), timeout=TIMEOUT)
    yield provider
    provider.close()


def create(
    provider: StripeProvider,
    key: str = "pmt_1",
    amount_cents: int = 1234,
    currency: str = "EUR",
    deadline: datetime | None = None,
) -> ProviderPayment:
    return provider.create_payment(
        reference=f"ord_{key}",
        amount_cents=amount_cents,
        currency=currency,
        callback_url=CALLBACK,
        idempotency_key=key,
        expires_at=deadline or datetime.now(UTC) + timedelta(minutes=15),
    )


# -- create -----------------------------------------------------------------------------------


def test_create_opens_a_checkout_session_for_the_amount(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    deadline = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15)
    payment = create(provider, deadline=deadline)

    assert payment.id.startswith("cs_") and payment.id in stand_in.sessions
    assert payment.status is PaymentStatus.PENDING
    assert (payment.amount_cents, payment.currency) == (1234, "EUR")
    assert payment.checkout_url == f"https://checkout.stripe.com/c/pay/{payment.id}"
    [sent] = stand_in.received("POST", "/v1/checkout/sessions")
    assert sent.headers["Idempotency-Key"] == "create-pmt_1"
    assert sent.headers["Authorization"] == f"Bearer {stand_in.secret_key}"
    assert sent.form == {
        "mode": "payment",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "1234",
        "line_items[0][price_data][product_data][name]": "Order ord_pmt_1",
        "line_items[0][quantity]": "1",
        "client_reference_id": "pmt_1",
        "metadata[payment_id]": "pmt_1",
        "metadata[order_id]": "ord_pmt_1",
        "payment_intent_data[metadata][payment_id]": "pmt_1",
        "payment_intent_data[metadata][order_id]": "ord_pmt_1",
        "success_url": "https://shop.example/api/v1/orders/ord_pmt_1",
        "cancel_url": "https://shop.example/api/v1/orders/ord_pmt_1",
        # 15 minutes is below Stripe's 30-minute minimum: 31 minutes past the deadline, which
        # the saga enforces itself by expiring the session.
        "expires_at": str(int(deadline.timestamp()) + 31 * 60),
    }


def test_a_far_deadline_is_still_31_minutes_before_the_sessions_expiry(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    deadline = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    create(provider, deadline=deadline)

    [sent] = stand_in.received("POST", "/v1/checkout/sessions")
    assert sent.form["expires_at"] == str(int(deadline.timestamp()) + 31 * 60)


def test_zero_decimal_amounts_are_sent_as_they_are(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider, amount_cents=500, currency="JPY")

    [sent] = stand_in.received("POST", "/v1/checkout/sessions")
    assert sent.form["line_items[0][price_data][unit_amount]"] == "500"
    assert sent.form["line_items[0][price_data][currency]"] == "jpy"
    assert (payment.amount_cents, payment.currency) == (500, "JPY")


@pytest.mark.parametrize("timeout", [timedelta(minutes=15), timedelta(minutes=31, seconds=30)])
def test_the_same_key_again_later_is_the_same_payment(stand_in: StripeStandIn, timeout: timedelta) -> None:
    """The saga's retry comes later, with the same deadline: the parameters must not have moved,
    even for a deadline just past Stripe's minimum (where "now" could have decided)."""
    provider = StripeProvider(stand_in.settings(), timeout=TIMEOUT)
    deadline = datetime.now(UTC) + timeout
    first = create(provider, deadline=deadline)
    again = create(provider, deadline=deadline)

    assert again == first
    assert len(stand_in.sessions) == 1
    # The stand-in holds keys to their parameters as Stripe does: other ones are refused.
    with pytest.raises(ProviderRejected) as refused:
        create(provider, amount_cents=999, deadline=deadline)
    assert refused.value.http_status == 400


def test_a_deadline_past_stripes_24_hours_is_refused(provider: StripeProvider) -> None:
    with pytest.raises(ProviderRejected) as refused:
        create(provider, deadline=datetime.now(UTC) + timedelta(hours=30))
    assert (refused.value.http_status, refused.value.code) == (400, "parameter_invalid_integer")


# -- get ----------------------------------------------------------------------------------------


def test_get_follows_the_session(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    paid, expired, declined = create(provider, "pmt_a"), create(provider, "pmt_b"), create(provider, "pmt_c")
    assert provider.get_payment(paid.id).status is PaymentStatus.PENDING

    stand_in.pay(paid.id)
    stand_in.expire_now(expired.id)
    stand_in.decline(declined.id)  # the buyer may try another card: still pending

    assert provider.get_payment(paid.id) == replace(paid, status=PaymentStatus.SUCCEEDED)
    assert provider.get_payment(expired.id).status is PaymentStatus.VOIDED
    assert provider.get_payment(declined.id).status is PaymentStatus.PENDING
    provider.refund_payment(paid.id)
    assert provider.get_payment(paid.id).status is PaymentStatus.REFUNDED


def test_get_follows_a_delayed_payment(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    settled, failed = create(provider, "pmt_a"), create(provider, "pmt_b")
    stand_in.pay(settled.id, delayed=True)
    stand_in.pay(failed.id, delayed=True)
    assert provider.get_payment(settled.id).status is PaymentStatus.PENDING  # complete, unpaid

    stand_in.settle(settled.id, succeeded=True)
    stand_in.settle(failed.id, succeeded=False)

    assert provider.get_payment(settled.id).status is PaymentStatus.SUCCEEDED
    assert provider.get_payment(failed.id).status is PaymentStatus.FAILED


def test_an_unknown_session_is_not_found(provider: StripeProvider) -> None:
    for call in (provider.get_payment, provider.void_payment, provider.refund_payment):
        with pytest.raises(PaymentNotFound):
            call("cs_test_nosuch")


# -- void ---------------------------------------------------------------------------------------


def test_void_expires_then_reads_the_session(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)

    voided = provider.void_payment(payment.id)

    assert voided.status is PaymentStatus.VOIDED
    assert stand_in.sessions[payment.id]["status"] == "expired"
    calls = [(r.method, r.path) for r in stand_in.requests[1:]]
    assert calls == [
        ("POST", f"/v1/checkout/sessions/{payment.id}/expire"),
        ("GET", f"/v1/checkout/sessions/{payment.id}"),
    ]


def test_void_of_a_session_expired_already_is_voided(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.expire_now(payment.id)

    assert provider.void_payment(payment.id).status is PaymentStatus.VOIDED


def test_void_racing_the_buyers_payment_is_refused_as_paid(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.pay_when_expired(payment.id)

    with pytest.raises(ProviderRejected) as refused:
        provider.void_payment(payment.id)

    assert refused.value.status_now is PaymentStatus.SUCCEEDED
    assert stand_in.sessions[payment.id]["status"] == "complete"
    assert provider.get_payment(payment.id).status is PaymentStatus.SUCCEEDED


def test_void_of_a_refunded_payment_says_refunded(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    provider.refund_payment(payment.id)

    with pytest.raises(ProviderRejected) as refused:
        provider.void_payment(payment.id)
    assert refused.value.status_now is PaymentStatus.REFUNDED


def test_void_of_a_delayed_payment_still_settling_is_not_voided(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.pay(payment.id, delayed=True)

    with pytest.raises(ProviderUnavailable):
        provider.void_payment(payment.id)
    stand_in.settle(payment.id, succeeded=False)
    assert provider.void_payment(payment.id).status is PaymentStatus.FAILED


def test_void_whose_expire_fails_is_retried_whole(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)
    stand_in.fail_next(1, status=503)

    with pytest.raises(ProviderUnavailable):
        provider.void_payment(payment.id)
    assert stand_in.sessions[payment.id]["status"] == "open"
    assert provider.void_payment(payment.id).status is PaymentStatus.VOIDED


# -- refund -------------------------------------------------------------------------------------


def test_refund_final_at_once(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)

    refunded = provider.refund_payment(payment.id)

    assert refunded.status is PaymentStatus.REFUNDED
    assert (refunded.id, refunded.amount_cents, refunded.currency) == (payment.id, 1234, "EUR")
    [sent] = stand_in.received("POST", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == "refund-pmt_1"
    assert sent.form == {
        "payment_intent": stand_in.sessions[payment.id]["payment_intent"],
        "metadata[payment_id]": "pmt_1",
    }
    # Asked again (the saga's retry): refunded, without a second refund.
    assert provider.refund_payment(payment.id).status is PaymentStatus.REFUNDED
    assert len(stand_in.received("POST", "/v1/refunds")) == 1


def test_a_refund_in_progress_is_asked_again_with_the_same_number(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    stand_in.refund_stays_pending(reads=2)

    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            provider.refund_payment(payment.id)
    refunded = provider.refund_payment(payment.id)

    assert refunded.status is PaymentStatus.REFUNDED
    assert len(stand_in.refunds) == 1
    keys = {r.headers["Idempotency-Key"] for r in stand_in.received("POST", "/v1/refunds")}
    assert keys == {"refund-pmt_1"}
    [refund_id] = stand_in.refunds
    assert len(stand_in.received("GET", f"/v1/refunds/{refund_id}")) == 3


def test_refund_of_an_unpaid_payment_is_refused(provider: StripeProvider) -> None:
    payment = create(provider)

    with pytest.raises(ProviderRejected) as refused:
        provider.refund_payment(payment.id)
    assert refused.value.status_now is PaymentStatus.PENDING


# -- transient failures -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_throttling_are_unavailable(
    stand_in: StripeStandIn, provider: StripeProvider, status: int
) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    for call in (lambda: create(provider, "pmt_2"), lambda: provider.get_payment(payment.id)):
        stand_in.fail_next(1, status=status)
        with pytest.raises(ProviderUnavailable):
            call()
    stand_in.fail_next(1, status=status)
    with pytest.raises(ProviderUnavailable):
        provider.refund_payment(payment.id)
    assert provider.get_payment(payment.id).status is PaymentStatus.SUCCEEDED


def test_an_unreadable_2xx_is_unavailable(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)
    stand_in.fail_next(1, status=200)  # a 200 whose body is no session

    with pytest.raises(ProviderUnavailable):
        provider.get_payment(payment.id)


def test_a_timeout_is_unavailable_and_the_retry_finds_the_same_session(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    deadline = datetime.now(UTC) + timedelta(minutes=15)
    stand_in.hang_next(1)
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable):
        create(provider, deadline=deadline)
    assert time.monotonic() - started < 1.4  # the read timeout, not the hang, ended it

    payment = create(provider, deadline=deadline)
    assert payment.status is PaymentStatus.PENDING
    with stand_in._lock:  # the hung create, handled once its wait is over, is the same one
        assert list(stand_in.sessions) == [payment.id]


def test_a_refused_key_is_unavailable_and_never_shown(stand_in: StripeStandIn) -> None:
    wrong = StripeSettings("sk_test_wrongwrongwrong", stand_in.webhook_secret, stand_in.api_base)
    provider = StripeProvider(wrong, timeout=TIMEOUT)

    with pytest.raises(ProviderUnavailable) as unavailable:
        create(provider)
    assert "sk_test_wrong" not in str(unavailable.value)
    assert stand_in.secret_key not in str(unavailable.value)


def test_no_provider_at_all_is_unavailable() -> None:
    settings = StripeSettings("sk_test_12345678", "whsec_12345678", "http://127.0.0.1:9")
    with pytest.raises(ProviderUnavailable):
        create(StripeProvider(settings, timeout=TIMEOUT))


# -- notifications ------------------------------------------------------------------------------


def test_a_payment_is_notified_to_the_webhook_until_it_answers_2xx(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    with WebhookSink(statuses=(500,)) as sink:
        stand_in.webhook_url = sink.url
        payment = create(provider)
        stand_in.pay(payment.id)
        (_, first), (headers, body) = sink.wait_for(2)

    assert first == body
    notification = provider.read_notification(CaseInsensitiveDict(headers), body, time.time())
    assert notification.kind is NotificationKind.SUCCEEDED
    assert (notification.payment_id, notification.provider_payment_id) == ("pmt_1", payment.id)
    assert (notification.amount_cents, notification.currency) == (1234, "EUR")
    assert notification.event_id == json.loads(body)["id"]
    [delivery] = stand_in.deliveries
    assert (delivery.attempts, delivery.delivered) == ([500, 200], True)


def read(
    stand_in: StripeStandIn, provider: StripeProvider, session_id: str, event_type: str, **kw: Any
) -> Notification:
    headers, body = stand_in.signed_notification(session_id, event_type, **kw)
    return provider.read_notification(headers, body, time.time())


def test_each_kind_of_session_event(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)
    stand_in.pay(payment.id, delayed=True)
    assert read(stand_in, provider, payment.id, "checkout.session.completed").kind is NotificationKind.IGNORED
    stand_in.settle(payment.id, succeeded=True)
    succeeded = read(stand_in, provider, payment.id, "checkout.session.async_payment_succeeded")
    assert (succeeded.kind, succeeded.payment_id, succeeded.provider_payment_id) == (
        NotificationKind.SUCCEEDED,
        "pmt_1",
        payment.id,
    )
    assert (
        read(stand_in, provider, payment.id, "checkout.session.completed").kind is NotificationKind.SUCCEEDED
    )
    failed = read(stand_in, provider, payment.id, "checkout.session.async_payment_failed")
    assert failed.kind is NotificationKind.FAILED
    expired = create(provider, "pmt_2", amount_cents=700, currency="JPY")
    stand_in.expire_now(expired.id)
    notification = read(stand_in, provider, expired.id, "checkout.session.expired")
    assert (notification.kind, notification.payment_id, notification.amount_cents, notification.currency) == (
        NotificationKind.IGNORED,
        "pmt_2",
        700,
        "JPY",
    )


def test_a_declined_intent_is_a_failure(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)
    stand_in.decline(payment.id)

    notification = read(stand_in, provider, payment.id, "payment_intent.payment_failed")
    assert notification.kind is NotificationKind.FAILED
    assert (notification.payment_id, notification.provider_payment_id) == ("pmt_1", None)
    assert (notification.amount_cents, notification.currency) == (1234, "EUR")


def test_refund_events(stand_in: StripeStandIn, provider: StripeProvider) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    stand_in.refund_stays_pending(reads=5)
    with pytest.raises(ProviderUnavailable):
        provider.refund_payment(payment.id)
    assert read(stand_in, provider, payment.id, "refund.created").kind is NotificationKind.IGNORED
    done = read(stand_in, provider, payment.id, "refund.updated", changes={"status": "succeeded"})
    assert (done.kind, done.payment_id, done.provider_payment_id) == (
        NotificationKind.REFUNDED,
        "pmt_1",
        None,
    )
    assert (done.amount_cents, done.currency) == (1234, "EUR")
    # A charge carries no metadata of ours unless Stripe put it there: then it is not ours.
    bare = read(stand_in, provider, payment.id, "charge.refunded", changes={"refunded": True})
    assert bare.kind is NotificationKind.IGNORED and bare.payment_id is None
    ours = {"metadata": {"payment_id": "pmt_1"}}
    full = read(stand_in, provider, payment.id, "charge.refunded", changes={**ours, "refunded": True})
    assert (full.kind, full.payment_id, full.amount_cents) == (NotificationKind.REFUNDED, "pmt_1", 1234)
    partial = read(stand_in, provider, payment.id, "charge.refunded", changes={**ours, "refunded": False})
    assert partial.kind is NotificationKind.IGNORED


def test_events_of_no_interest_or_without_our_metadata_are_ignored(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    other = read(stand_in, provider, payment.id, "checkout.session.async_payment_failed")
    assert other.kind is NotificationKind.FAILED  # (the control: the same event, with metadata)
    bare = read(
        stand_in,
        provider,
        payment.id,
        "checkout.session.completed",
        changes={"metadata": {}, "client_reference_id": None},
    )
    assert bare.kind is NotificationKind.IGNORED
    _, body = stand_in.signed_notification(payment.id, "payment_intent.succeeded")
    body = body.replace(b'"payment_intent.succeeded"', b'"customer.created"')
    ignored = provider.read_notification(stand_in.sign(body), body, time.time())
    assert (ignored.kind, ignored.event_id) == (NotificationKind.IGNORED, json.loads(body)["id"])


def test_a_signature_computed_as_stripe_documents_it_is_accepted(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    _, body = stand_in.signed_notification(payment.id, "checkout.session.completed")
    timestamp = str(int(time.time()))
    digest = hmac.new(stand_in.webhook_secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    headers = CaseInsensitiveDict({"stripe-signature": f"t={timestamp},v1={digest.hexdigest()}"})

    assert provider.read_notification(headers, body, time.time()).kind is NotificationKind.SUCCEEDED


def test_forged_stale_and_garbled_notifications_are_refused(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    now = int(time.time())
    kind = "checkout.session.completed"
    forged = stand_in.signed_notification(payment.id, kind, secret="whsec_notthesecretatall")
    stale = stand_in.signed_notification(payment.id, kind, timestamp=now - 301)
    future = stand_in.signed_notification(payment.id, kind, timestamp=now + 400)
    headers, body = stand_in.signed_notification(payment.id, kind)
    tampered = (headers, body.replace(b"1234", b"1"))
    unsigned: tuple[dict[str, str], bytes] = ({}, body)
    cases = [forged, stale, future, tampered, unsigned, ({"Stripe-Signature": "garbage"}, body)]
    for raw in (b"not json", b"[1, 2]", b'{"object": "event"}', "é".encode("latin-1")):
        timestamp = str(now).encode()
        mac = hmac.new(stand_in.webhook_secret.encode(), timestamp + b"." + raw, hashlib.sha256).hexdigest()
        cases.append(({"Stripe-Signature": f"t={now},v1={mac}"}, raw))
    for case_headers, case_body in cases:
        with pytest.raises(NotificationRefused):
            provider.read_notification(case_headers, case_body, now)
    # The genuine one, read later than the replay window allows, is refused too.
    assert provider.read_notification(headers, body, now).kind is NotificationKind.SUCCEEDED
    with pytest.raises(NotificationRefused):
        provider.read_notification(headers, body, now + 301)


def test_a_genuine_event_of_another_account_is_a_mismatch(
    stand_in: StripeStandIn, provider: StripeProvider
) -> None:
    payment = create(provider)
    stand_in.pay(payment.id)
    headers, body = stand_in.signed_notification(
        payment.id, "checkout.session.completed", account="acct_other"
    )

    with pytest.raises(NotificationMismatch):
        provider.read_notification(headers, body, time.time())
