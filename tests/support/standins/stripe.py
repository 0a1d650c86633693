"""A local stand-in of Stripe's API (Checkout Sessions and Refunds) and of its webhooks, for tests.

It speaks Stripe's wire format: form-encoded requests with bracketed keys
(`line_items[0][price_data][currency]`), `Authorization: Bearer <secret key>`, JSON answers with
`object` fields, errors as `{"error": {"type", "code", "message", "param"}}` with Stripe's HTTP
statuses, and `Idempotency-Key` honoured (the same key and parameters replay the first answer;
the same key with other parameters is a 400 `idempotency_error`). Only the endpoints the adapter
calls are served:

    POST /v1/checkout/sessions              GET  /v1/checkout/sessions/{id}  (expand[]=...)
    POST /v1/checkout/sessions/{id}/expire  POST /v1/refunds   GET /v1/refunds/{id}

Events are signed as Stripe signs them (`Stripe-Signature: t=...,v1=HMAC-SHA256("t.body")`),
with the SDK's own test helper `stripe.WebhookSignature.generate_signature_header`, and POSTed
to `webhook_url` (Stripe has one endpoint per account, not a notify URL per payment), in a
background thread, retried with a short backoff until a 2xx, for at most DELIVERY_SECONDS.

A test drives it with `pay`, `decline`, `pay(delayed=True)` + `settle`, `expire_now`,
`refund_stays_pending`, `fail_next`, `hang_next`, `pay_when_expired`, and builds forged ones
with `signed_notification`. It is a test utility: nothing under `app/` imports it.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
import stripe
from werkzeug.wrappers import Request, Response

from app.payment_settings import StripeSettings
from tests.support.standins.server import StandInServer

API_VERSION = "2025-08-27.basil"
MIN_EXPIRY, MAX_EXPIRY = 30 * 60, 24 * 3600

Json = dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    form: dict[str, str]  # the flat, bracketed keys as sent
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class Delivery:
    event_id: str
    event_type: str
    attempts: list[int | str] = field(default_factory=list)  # HTTP status, or the error's name
    delivered: bool = False


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", **extra: Any):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, **extra}}


def nested(flat: dict[str, str]) -> Json:
    """`a[b][0][c]=v` -> {"a": {"b": {"0": {"c": "v"}}}} (list indexes stay string keys)."""
    root: Json = {}
    for key, value in flat.items():
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


class StripeStandIn:
    """Start with `with StripeStandIn() as stand_in:`; `stand_in.settings()` is what the shop needs."""

    def __init__(self, *, hang_seconds: float = 2.0) -> None:
        self.secret_key = "sk_test_" + secrets.token_hex(16)
        self.webhook_secret = "whsec_" + secrets.token_hex(16)
        self.webhook_url: str | None = None
        self.hang_seconds = hang_seconds
        self.requests: list[Recorded] = []
        self.deliveries: list[Delivery] = []
        self.sessions: dict[str, Json] = {}
        self.intents: dict[str, Json] = {}
        self.charges: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self._intent_metadata: dict[str, Json] = {}
        self._idempotent: dict[str, tuple[Any, int, Json]] = {}
        self._pending_reads: dict[str, int] = {}
        self._lock = threading.RLock()
        self._fail_next: list[int] = []
        self._hang_next = 0
        self._refund_pending_reads = 0
        self._pay_on_expire: set[str] = set()
        self.server = StandInServer(self._wsgi, "stripe-standin")

    # -- life ------------------------------------------------------------------------------

    def start(self) -> StripeStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> StripeStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def api_base(self) -> str:
        return self.server.url

    def settings(self) -> StripeSettings:
        return StripeSettings(
            secret_key=self.secret_key, webhook_secret=self.webhook_secret, api_base=self.api_base
        )

    # -- what a test scripts -------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """The next `count` API calls answer `status` (a 5xx api_error) without doing anything."""
        with self._lock:
            self._fail_next.extend([status] * count)

    def hang_next(self, count: int = 1) -> None:
        """The next `count` API calls wait `hang_seconds` before being handled (and answered)."""
        with self._lock:
            self._hang_next += count

    def refund_stays_pending(self, reads: int) -> None:
        """The next refund is created `pending` and stays so for its first `reads` GETs."""
        with self._lock:
            self._refund_pending_reads = reads

    def pay_when_expired(self, session_id: str) -> None:
        """The race: the buyer pays the moment the expire request arrives, so Stripe answers the
        expire as it answers for a complete session (400) and the session is paid."""
        with self._lock:
            self._pay_on_expire.add(session_id)

    def pay(self, session_id: str, *, delayed: bool = False) -> None:
        """The buyer pays: by card (complete, paid) or by a delayed method (complete, unpaid,
        the intent `processing` until `settle`)."""
        with self._lock:
            session = self._open_session(session_id)
            intent = self._intent_for(session, "processing" if delayed else "succeeded")
            session.update(status="complete", payment_status="unpaid" if delayed else "paid")
            if not delayed:
                self._charge(intent)
            self._emit("checkout.session.completed", self.session_object(session_id))

    def settle(self, session_id: str, *, succeeded: bool) -> None:
        """A delayed payment settles: the money arrives, or the debit fails."""
        with self._lock:
            session = self.sessions[session_id]
            intent = self.intents[session["payment_intent"]]
            if succeeded:
                intent["status"] = "succeeded"
                self._charge(intent)
                session["payment_status"] = "paid"
                self._emit("checkout.session.async_payment_succeeded", self.session_object(session_id))
            else:
                intent["status"] = "requires_payment_method"
                self._emit("checkout.session.async_payment_failed", self.session_object(session_id))

    def decline(self, session_id: str) -> None:
        """The buyer's card is declined: the intent fails, the session stays open for another try."""
        with self._lock:
            session = self._open_session(session_id)
            intent = self._intent_for(session, "requires_payment_method")
            intent["last_payment_error"] = {"type": "card_error", "code": "card_declined"}
            self._emit("payment_intent.payment_failed", dict(intent))

    def expire_now(self, session_id: str) -> None:
        """Stripe's own timer expires the session."""
        with self._lock:
            self._expire(self._open_session(session_id))

    def signed_notification(
        self,
        session_id: str,
        event_type: str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        account: str | None = None,
        changes: Json | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """An event about this payment, signed (with `secret` in place of the endpoint's, or at
        an old `timestamp`, to forge one), not sent. `changes` are set on the event's object."""
        with self._lock:
            event = self._event(event_type, {**self._object_for(session_id, event_type), **(changes or {})})
        if account is not None:
            event["account"] = account
        body = json.dumps(event).encode()
        return self.sign(body, secret=secret, timestamp=timestamp), body

    def sign(self, body: bytes, *, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
        header = stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret or self.webhook_secret, timestamp=timestamp
        )
        return {"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"}

    def received(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def session_object(self, session_id: str, expand: tuple[str, ...] = ()) -> Json:
        session = dict(self.sessions[session_id])
        intent_id = session.get("payment_intent")
        if intent_id and any(e.startswith("payment_intent") for e in expand):
            intent = dict(self.intents[intent_id])
            if intent.get("latest_charge") and "payment_intent.latest_charge" in expand:
                intent["latest_charge"] = dict(self.charges[intent["latest_charge"]])
            session["payment_intent"] = intent
        return session

    # -- objects ------------------------------------------------------------------------------

    def _open_session(self, session_id: str) -> Json:
        session = self.sessions[session_id]
        assert session["status"] == "open", f"session {session_id} is {session['status']}"
        return session

    def _intent_for(self, session: Json, status: str) -> Json:
        intent_id = session.get("payment_intent") or _new_id("pi")
        intent = self.intents.setdefault(
            intent_id,
            {
                "id": intent_id,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "currency": session["currency"],
                "metadata": dict(self._intent_metadata.get(session["id"], {})),
                "latest_charge": None,
                "last_payment_error": None,
                "livemode": False,
            },
        )
        intent["status"] = status
        session["payment_intent"] = intent_id
        return intent

    def _charge(self, intent: Json) -> Json:
        # The intent's metadata is deliberately not copied onto the charge: Stripe does not
        # document that it does, so the adapter must not rely on it.
        charge_id = _new_id("ch")
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": 0,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "metadata": {},
            "paid": True,
            "refunded": False,
            "status": "succeeded",
            "livemode": False,
        }
        self.charges[charge_id] = charge
        intent["latest_charge"] = charge_id
        return charge

    def _expire(self, session: Json) -> None:
        session["status"] = "expired"
        session["url"] = None
        self._emit("checkout.session.expired", self.session_object(session["id"]))

    def _finish_refund(self, refund: Json) -> None:
        refund["status"] = "succeeded"
        charge = self.charges[refund["charge"]]
        charge.update(refunded=True, amount_refunded=charge["amount"])
        self._emit("refund.updated", dict(refund))
        self._emit("charge.refunded", dict(charge))

    def _object_for(self, session_id: str, event_type: str) -> Json:
        session = self.sessions[session_id]
        if event_type.startswith("checkout.session."):
            return self.session_object(session_id)
        intent = self.intents.get(session.get("payment_intent") or "")
        intent = intent or self._intent_for(session, "succeeded")
        if event_type.startswith("payment_intent."):
            return dict(intent)
        charge = self.charges.get(intent.get("latest_charge") or "") or self._charge(intent)
        if event_type.startswith("charge."):
            return dict(charge)
        refunds = [r for r in self.refunds.values() if r["charge"] == charge["id"]]
        return dict(refunds[-1]) if refunds else self._refund(charge, intent, dict(intent["metadata"]))

    def _refund(self, charge: Json, intent: Json, metadata: Json) -> Json:
        refund_id = _new_id("re")
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": charge["amount"] - charge["amount_refunded"],
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": intent["id"],
            "metadata": metadata,
            "status": "pending",
        }
        self.refunds[refund_id] = refund
        return refund

    # -- events -------------------------------------------------------------------------------

    def _event(self, event_type: str, obj: Json) -> Json:
        return {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def _emit(self, event_type: str, obj: Json) -> None:
        event = self._event(event_type, obj)
        if self.webhook_url is None:
            return
        delivery = Delivery(event["id"], event_type)
        self.deliveries.append(delivery)
        url, body = self.webhook_url, json.dumps(event).encode()
        self.server.deliver(lambda: self._deliver_once(url, body, delivery))

    def _deliver_once(self, url: str, body: bytes, delivery: Delivery) -> bool:
        try:
            # Signed afresh at each attempt, as Stripe does: a retry is no replay.
            answer = requests.post(url, data=body, headers=self.sign(body), timeout=5)
        except requests.RequestException as error:
            delivery.attempts.append(type(error).__name__)
            return False
        delivery.attempts.append(answer.status_code)
        delivery.delivered = 200 <= answer.status_code < 300
        return delivery.delivered

    # -- the HTTP side --------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        form = {k: v for k, v in request.form.items(multi=True)}
        headers = {k: v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.path, form, request.args.to_dict(flat=False), headers)
            )
            hang = self._hang_next > 0
            self._hang_next -= 1 if hang else 0
            fail = self._fail_next.pop(0) if self._fail_next else None
        if hang:
            self.server.stopping.wait(self.hang_seconds)
        status, body = self._answer(request, form, fail)
        response = Response(json.dumps(body), status=status, content_type="application/json")
        response.headers["Request-Id"] = _new_id("req")
        return response(environ, start_response)

    def _answer(self, request: Request, form: dict[str, str], fail: int | None) -> tuple[int, Json]:
        if fail is not None:
            return fail, {"error": {"type": "api_error", "message": "An unknown error occurred."}}
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            masked = (request.headers.get("Authorization") or "")[-4:]
            return 401, ApiError(401, f"Invalid API Key provided: sk_test_****{masked}").body
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        fingerprint = (request.path, sorted(form.items()))
        with self._lock:
            if key is not None and key in self._idempotent:
                return self._replay(key, fingerprint)
            try:
                status, body = 200, self._route(request, form)
            except ApiError as error:
                status, body = error.status, error.body
            if key is not None and status < 400:
                self._idempotent[key] = (fingerprint, status, body)
        return status, body

    def _replay(self, key: str, fingerprint: Any) -> tuple[int, Json]:
        first, status, body = self._idempotent[key]
        if first != fingerprint:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were "
                f"first used with. Try using a key other than '{key}' if you meant to execute a "
                "different request."
            )
            return 400, ApiError(400, message, type_="idempotency_error").body
        return status, body

    def _route(self, request: Request, form: dict[str, str]) -> Json:
        method, path = request.method, request.path
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(nested(form))
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(nested(form))
        if match := re.fullmatch(r"/v1/checkout/sessions/([^/]+)(/expire)?", path):
            session_id = self._known("checkout.session", self.sessions, match.group(1))
            if method == "POST" and match.group(2):
                return self._expire_session(session_id)
            if method == "GET" and not match.group(2):
                expand = tuple(v for k, vs in request.args.lists() if k.startswith("expand") for v in vs)
                return self.session_object(session_id, expand)
        if method == "GET" and (match := re.fullmatch(r"/v1/refunds/([^/]+)", path)):
            return self._read_refund(self._known("refund", self.refunds, match.group(1)))
        raise ApiError(404, f"Unrecognized request URL ({method}: {path}).")

    def _known(self, kind: str, objects: dict[str, Json], object_id: str) -> str:
        if object_id not in objects:
            raise ApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")
        return object_id

    def _create_session(self, params: Json) -> Json:
        if params.get("mode") != "payment":
            raise ApiError(400, "Missing required param: mode.", code="parameter_missing", param="mode")
        try:
            item = params["line_items"]["0"]
            price = item["price_data"]
            amount, quantity = int(price["unit_amount"]), int(item.get("quantity", "1"))
            currency, _name = price["currency"], price["product_data"]["name"]
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Invalid line_items.", code="parameter_invalid", param="line_items") from None
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + MAX_EXPIRY)
        if not now + MIN_EXPIRY <= expires_at <= now + MAX_EXPIRY:
            raise ApiError(
                400,
                "The `expires_at` timestamp must be at least 30 minutes and at most 24 hours from "
                "Checkout Session creation.",
                code="parameter_invalid_integer",
                param="expires_at",
            )
        session_id = _new_id("cs")
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount * quantity,
            "amount_total": amount * quantity,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "expires_at": expires_at,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": "payment",
            "payment_intent": None,  # created when the buyer confirms, as in current API versions
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self._intent_metadata[session_id] = params.get("payment_intent_data", {}).get("metadata", {})
        return self.session_object(session_id)

    def _expire_session(self, session_id: str) -> Json:
        if session_id in self._pay_on_expire:
            self._pay_on_expire.discard(session_id)
            self.pay(session_id)
        session = self.sessions[session_id]
        if session["status"] != "open":
            raise ApiError(400, 'Only Checkout Sessions with a status in ["open"] can be expired.')
        self._expire(session)
        return self.session_object(session_id)

    def _create_refund(self, params: Json) -> Json:
        intent_id = params.get("payment_intent")
        if not intent_id:
            raise ApiError(400, "Missing required param: payment_intent.", code="parameter_missing")
        intent = self.intents.get(intent_id)
        if intent is None:
            raise ApiError(400, f"No such payment_intent: '{intent_id}'", code="resource_missing")
        charge = self.charges.get(intent.get("latest_charge") or "")
        if intent["status"] != "succeeded" or charge is None:
            raise ApiError(
                400,
                "This PaymentIntent does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        if charge["refunded"]:
            message = f"Charge {charge['id']} has already been refunded."
            raise ApiError(400, message, code="charge_already_refunded")
        refund = self._refund(charge, intent, params.get("metadata", {}))
        pending_reads, self._refund_pending_reads = self._refund_pending_reads, 0
        if pending_reads:
            self._pending_reads[refund["id"]] = pending_reads
            self._emit("refund.created", dict(refund))
        else:
            refund["status"] = "succeeded"
            self._emit("refund.created", dict(refund))
            charge.update(refunded=True, amount_refunded=charge["amount"])
            self._emit("charge.refunded", dict(charge))
        return dict(refund)

    def _read_refund(self, refund_id: str) -> Json:
        refund = self.refunds[refund_id]
        if refund["status"] == "pending":
            if self._pending_reads.get(refund_id, 0) > 0:
                self._pending_reads[refund_id] -= 1
            else:
                self._finish_refund(refund)
        return dict(refund)


class WebhookSink:
    """The shop's side of the webhook, for tests: records each POST and answers the next
    status of `statuses` (then 200)."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self.server = StandInServer(self._wsgi, "webhook-sink")

    @property
    def url(self) -> str:
        return f"{self.server.url}/api/v1/payments/webhooks/stripe"

    def __enter__(self) -> WebhookSink:
        self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} webhook(s) received, {count} expected")

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            self.received.append(({k: v for k, v in request.headers.items()}, request.get_data()))
            status = self._statuses.pop(0) if self._statuses else 200
        return Response("", status=status)(environ, start_response)
