"""The adapter for the sandbox provider, spoken to over HTTP exactly as a real one would be.

It imports nothing of `app.sandbox`: the wire format below is the whole agreement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from app.payments.port import (
    DEFAULT_TIMEOUT,
    PaymentNotFound,
    PaymentStatus,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
    is_transient_status,
)

STATUSES = {
    "pending": PaymentStatus.PENDING,
    "succeeded": PaymentStatus.SUCCEEDED,
    "failed": PaymentStatus.FAILED,
    "voided": PaymentStatus.VOIDED,
    "refunded": PaymentStatus.REFUNDED,
}


class SandboxProvider:
    """`base_url` is where the sandbox is served: `<ORDERSAGA_PUBLIC_URL>/sandbox`.

    One instance holds one `requests.Session` (pooled connections); create it per process,
    after any fork, and do not share it across threads.
    """

    name = "sandbox"
    keyed_by_our_id = False

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def create_payment(
        self,
        *,
        reference: str,
        amount_cents: int,
        currency: str,
        callback_url: str,
        idempotency_key: str,
        expires_at: datetime,
    ) -> ProviderPayment:
        """The sandbox expires nothing itself: `expires_at` is the shop's timeout to keep."""
        body = {
            "amount_cents": amount_cents,
            "currency": currency,
            "callback_url": callback_url,
            "reference": reference,
        }
        return self._call("POST", "/api/payments", json=body, headers={"Idempotency-Key": idempotency_key})

    def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        return self._call("GET", f"/api/payments/{_segment(provider_payment_id)}")

    def void_payment(self, provider_payment_id: str) -> ProviderPayment:
        return self._call("POST", f"/api/payments/{_segment(provider_payment_id)}/void")

    def refund_payment(self, provider_payment_id: str) -> ProviderPayment:
        return self._call("POST", f"/api/payments/{_segment(provider_payment_id)}/refund")

    def close(self) -> None:
        self.session.close()

    def _call(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> ProviderPayment:
        what = f"sandbox {method} {path}"
        try:
            response = self.session.request(
                method, self.base_url + path, json=json, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise ProviderUnavailable(f"{what}: {type(error).__name__}: {error}") from error
        if response.ok:
            return _payment(response, what)
        raise _error(response, what)


def _segment(provider_payment_id: str) -> str:
    """Quote an id for a URL path, so that an odd id can only ever name a payment."""
    return quote(provider_payment_id, safe="")


def _body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _payment(response: requests.Response, what: str) -> ProviderPayment:
    body = _body(response)
    try:
        payment_id, amount, currency = body["id"], body["amount_cents"], body["currency"]
        status = STATUSES[body["status"]]
    except (KeyError, TypeError):
        # A 2xx we cannot read is the provider misbehaving: treat it like an outage and retry.
        raise ProviderUnavailable(f"{what}: unreadable answer {response.text[:200]!r}") from None
    checkout_url = body.get("checkout_url")
    return ProviderPayment(
        id=str(payment_id),
        status=status,
        amount_cents=int(amount),
        currency=str(currency),
        checkout_url=checkout_url if isinstance(checkout_url, str) else None,
    )


def _error(response: requests.Response, what: str) -> Exception:
    code = response.status_code
    body = _body(response)
    detail = f"{what}: {code} {body.get('detail') or response.reason}"
    if is_transient_status(code):
        return ProviderUnavailable(detail)
    if code == 404:
        return PaymentNotFound(detail)
    status_now = body.get("status_now")
    return ProviderRejected(
        detail,
        code=body.get("code") if isinstance(body.get("code"), str) else None,
        http_status=code,
        status_now=STATUSES.get(status_now) if isinstance(status_now, str) else None,
    )
