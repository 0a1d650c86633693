"""The sandbox provider's webhook sender, as a real provider's works.

A settlement or refund records its event (`record`) in the same transaction as the status
change; after the commit, `dispatch` hands the event to a Celery task on the `sandbox` queue
(never delivered inside the buyer's request). The task calls `attempt_delivery`: it claims the
row, POSTs the signed JSON body with no transaction open, and records the outcome. Anything but
a 2xx answer (a 4xx too, as real providers do) is retried with exponential back-off and full
jitter, up to MAX_ATTEMPTS attempts. `overdue` feeds the redelivery sweep: events whose message
was lost (broker down at commit, worker killed mid-attempt) are sent again.

A message may arrive twice (the sweep and a slow original, a redelivered unacked message): the
claim, a compare-and-set on `next_attempt_at`, lets only one of them attempt, and the receiver
dedupes by event id anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import requests
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy import ColumnElement, and_, select, update

from app.db import Database, UnitOfWork
from app.ids import new_id
from app.sandbox.models import EVENT_ID_PREFIX, EVENT_TYPES, SandboxPayment, SandboxWebhookDelivery
from app.timeutil import utcnow

log = logging.getLogger(__name__)

DELIVER_TASK = "sandbox.deliver_webhook"
REDELIVER_TASK = "sandbox.redeliver_pending"
QUEUE = "sandbox"
SIGNATURE_HEADER = "Sandbox-Signature"

MAX_RETRIES = 25
MAX_ATTEMPTS = 1 + MAX_RETRIES
BACKOFF_FACTOR = 2  # seconds: the first retry waits up to 2 s, then 4, 8, ... (full jitter)
BACKOFF_MAX = 300
TIMEOUT = (5.0, 10.0)  # connect, read
# An attempt holds its delivery this long, so that a duplicate message does not attempt too.
CLAIM = timedelta(seconds=60)
# How early a retry message may arrive before the time recorded for it (clock and ETA slack).
EARLY = timedelta(seconds=2)
# The sweep re-sends a delivery this long past its due time (its message was surely lost).
OVERDUE = timedelta(seconds=30)
MAX_ERROR_LENGTH = 1000
RESPONSE_SNIPPET = 200
BROKER_CONNECT_TIMEOUT = 2.0
USER_AGENT = "ordersaga-sandbox-webhooks/1"

Outcome = Literal["delivered", "retry", "gave-up", "skipped"]


class HttpClient(Protocol):
    def post(self, url: str, **kwargs: Any) -> requests.Response: ...


class TaskSender(Protocol):
    def send_task(self, name: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Attempt:
    """What one call of `attempt_delivery` did; `retry_in` (seconds) when it should run again."""

    outcome: Outcome
    attempts: int = 0
    retry_in: float | None = None
    status_code: int | None = None
    error: str | None = None


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Sandbox-Signature` header value: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def record(uow: UnitOfWork, payment: SandboxPayment, event_type: str) -> SandboxWebhookDelivery:
    """Add the event about `payment` to the caller's transaction (not committed here)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    now = utcnow()
    event_id = new_id(EVENT_ID_PREFIX)
    payload = {
        "id": event_id,
        "type": event_type,
        "created": int(now.timestamp()),
        "data": {
            "payment_id": payment.id,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
        },
    }
    delivery = SandboxWebhookDelivery(
        id=event_id,
        payment_id=payment.id,
        type=event_type,
        payload=payload,
        callback_url=payment.callback_url,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(delivery)
    return delivery


def dispatch(delivery_ids: Iterable[str], sender: TaskSender | None = None) -> int:
    """Send a delivery task for each id, after the commit; returns how many went to the broker.

    A broker that cannot take the message is logged, never raised: the settlement is committed
    and the redelivery sweep sends the event later.
    """
    ids = list(delivery_ids)
    if not ids:
        return 0
    try:
        celery_app = sender or _celery_app()
    except (KeyError, RuntimeError):  # outside an app context, or an app without Celery
        log.warning("no Celery app to send webhook deliveries %s; the sweep will", ids, exc_info=True)
        return 0
    sent = 0
    try:
        with _connection(celery_app) as connection:
            extra = {"connection": connection} if connection is not None else {}
            for delivery_id in ids:
                celery_app.send_task(
                    DELIVER_TASK, kwargs={"delivery_id": delivery_id}, queue=QUEUE, retry=False, **extra
                )
                sent += 1
    except Exception:  # broker down: settled already, so log it; the redelivery sweep sends them later
        # The rest would fail alike.
        log.warning("could not send webhook deliveries %s; the sweep will", ids[sent:], exc_info=True)
    return sent


def _connection(celery_app: TaskSender) -> AbstractContextManager[Any]:
    """A broker connection that gives up at once: a broker that is down must cost the buyer's
    request one failed connect, not kombu's default retries (seconds of sleeping)."""
    open_connection = getattr(celery_app, "connection_for_write", None)
    if open_connection is None:  # a sender that is not a Celery app (tests)
        return nullcontext()
    connection: AbstractContextManager[Any] = open_connection(
        transport_options={"max_retries": 0}, connect_timeout=BROKER_CONNECT_TIMEOUT
    )
    return connection


def _celery_app() -> TaskSender:
    # The sandbox's views and tasks run inside a Flask app (its Celery app is on it); a script
    # outside one falls back to Celery's default app. Imported here: the delivery itself needs
    # neither.
    from flask import current_app, has_app_context

    if has_app_context() and "celery" in current_app.extensions:
        sender: TaskSender = current_app.extensions["celery"]
        return sender
    from celery import current_app as current_celery

    default: TaskSender = current_celery
    return default


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: exponential, capped, full jitter."""
    seconds: float = get_exponential_backoff_interval(
        BACKOFF_FACTOR, max(attempts - 1, 0), BACKOFF_MAX, full_jitter=True
    )
    return max(1.0, float(seconds))


def attempt_delivery(db: Database, delivery_id: str, secret: str, http: HttpClient | None = None) -> Attempt:
    """Attempt to deliver one event now, if it is due; record the outcome.

    Three short steps, no transaction open during the HTTP call: claim the delivery (one
    conditional UPDATE), POST it, record what happened.
    """
    claimed = _claim(db, delivery_id)
    if claimed is None:
        return Attempt("skipped")
    attempts, callback_url, payload = claimed

    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
    }
    status_code: int | None = None
    try:
        response = (http or requests).post(
            callback_url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False, stream=True
        )
        try:
            status_code = response.status_code
            error = None if 200 <= status_code < 300 else f"HTTP {status_code}: {_snippet(response)}"
        finally:
            response.close()
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"

    return _record_outcome(db, delivery_id, attempts, status_code, error)


def _claim(db: Database, delivery_id: str) -> tuple[int, str, dict[str, Any]] | None:
    """Take the delivery for one attempt if it is undelivered, due and not given up on."""
    with db.uow() as uow:
        now = utcnow()
        claimed = uow.session.execute(
            update(SandboxWebhookDelivery)
            .where(
                SandboxWebhookDelivery.id == delivery_id,
                SandboxWebhookDelivery.delivered_at.is_(None),
                SandboxWebhookDelivery.attempts < MAX_ATTEMPTS,
                SandboxWebhookDelivery.next_attempt_at <= now + EARLY,
            )
            .values(
                attempts=SandboxWebhookDelivery.attempts + 1,
                next_attempt_at=now + CLAIM,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = uow.session.execute(
            select(
                SandboxWebhookDelivery.attempts,
                SandboxWebhookDelivery.callback_url,
                SandboxWebhookDelivery.payload,
            ).where(SandboxWebhookDelivery.id == delivery_id)
        ).one()
        uow.commit()
        return int(row.attempts), str(row.callback_url), dict(row.payload)


def _record_outcome(
    db: Database, delivery_id: str, attempts: int, status_code: int | None, error: str | None
) -> Attempt:
    now = utcnow()
    values: dict[str, Any] = {"last_status_code": status_code, "updated_at": now}
    if error is None:
        values.update(delivered_at=now, last_error=None)
        attempt = Attempt("delivered", attempts, status_code=status_code)
    elif attempts >= MAX_ATTEMPTS:
        values.update(last_error=error[:MAX_ERROR_LENGTH])
        attempt = Attempt("gave-up", attempts, status_code=status_code, error=error)
    else:
        retry_in = backoff(attempts)
        values.update(last_error=error[:MAX_ERROR_LENGTH], next_attempt_at=now + timedelta(seconds=retry_in))
        attempt = Attempt("retry", attempts, retry_in=retry_in, status_code=status_code, error=error)
    with db.uow() as uow:
        uow.session.execute(
            update(SandboxWebhookDelivery)
            .where(SandboxWebhookDelivery.id == delivery_id, SandboxWebhookDelivery.delivered_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        uow.commit()
    if attempt.outcome == "delivered":
        log.info("webhook %s delivered (attempt %s, HTTP %s)", delivery_id, attempts, status_code)
    elif attempt.outcome == "gave-up":
        log.error("webhook %s given up after %s attempts: %s", delivery_id, attempts, error)
    else:
        log.warning(
            "webhook %s attempt %s failed (%s); retry in %.0fs",
            delivery_id,
            attempts,
            error,
            attempt.retry_in,
        )
    return attempt


def _snippet(response: requests.Response) -> str:
    """The start of an error answer's body, for `last_error`; never the whole of a large one."""
    try:
        chunk = next(response.iter_content(RESPONSE_SNIPPET), b"")
    except requests.RequestException:
        return ""
    text = chunk.decode("utf-8", errors="replace") if isinstance(chunk, bytes) else str(chunk)
    return " ".join(text.split())[:RESPONSE_SNIPPET]


def _is_overdue(now: datetime, older_than: timedelta) -> ColumnElement[bool]:
    return and_(
        SandboxWebhookDelivery.delivered_at.is_(None),
        SandboxWebhookDelivery.attempts < MAX_ATTEMPTS,
        SandboxWebhookDelivery.next_attempt_at < now - older_than,
    )


def any_overdue(db: Database, older_than: timedelta = OVERDUE) -> bool:
    """Whether the redelivery sweep would find anything: beat asks before each of its ticks."""
    waiting = select(SandboxWebhookDelivery.id).where(_is_overdue(utcnow(), older_than)).limit(1)
    with db.engine.connect() as connection:
        return connection.execute(waiting).first() is not None


def overdue(db: Database, older_than: timedelta = OVERDUE, limit: int = 500) -> list[str]:
    """Undelivered events whose attempt is `older_than` past due; marks them due now.

    Marking them keeps the next sweep from sending them again before this one's messages had a
    chance to run. Two sweeps at once on PostgreSQL skip each other's rows.
    """
    now = utcnow()
    with db.uow() as uow:
        ids = list(
            uow.session.scalars(
                select(SandboxWebhookDelivery.id)
                .where(_is_overdue(now, older_than))
                .order_by(SandboxWebhookDelivery.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            uow.session.execute(
                update(SandboxWebhookDelivery)
                .where(SandboxWebhookDelivery.id.in_(ids))
                .values(next_attempt_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        uow.commit()
    return ids


def redeliver(db: Database, sender: TaskSender | None = None) -> int:
    """The redelivery sweep: send again what is overdue; returns how many went to the broker."""
    ids = overdue(db)
    sent = dispatch(ids, sender)
    if ids:
        log.info("sandbox: re-sent %s of %s overdue webhook deliveries", sent, len(ids))
    return sent
