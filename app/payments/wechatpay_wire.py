"""WeChat Pay API v3 on the wire: signed requests, verified answers, one classification of failures.

Why not the SDK's own transport (`wechatpayv3.core.Core.request`): its gateway is hard-coded
(`https://api.mch.weixin.qq.com`, reachable only as a private attribute), so it cannot be
pointed at `WechatpaySettings.base_url`; it keeps no connection pool; it raises a bare
`Exception` for a bad answer signature; and an answer naming a key serial it does not know
makes it download `/v3/certificates` in the middle of the call. So the HTTP exchange is ours,
and the signing and the checking of signatures are the SDK's public helpers
(`wechatpayv3.utils.build_authorization` and `rsa_verify`), over exactly the bytes sent and
received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3.utils import build_authorization, rsa_verify

from app.payments.port import (
    DEFAULT_TIMEOUT,
    PaymentNotFound,
    PaymentStatus,
    ProviderRejected,
    ProviderUnavailable,
    is_transient_status,
)

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"

# Worth retrying besides the HTTP statuses every provider retries (port.is_transient_status).
TRANSIENT_CODES = {"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANKERROR"}
# A 404 only means "no such payment" when WeChat Pay says so; any other 404 (a wrong base URL,
# a proxy's page) is an outage, never a reason to give a payment up.
NOT_FOUND_CODES = {"ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"}
# What a refusal tells about the payment.
CODE_STATUS = {"ORDERPAID": PaymentStatus.SUCCEEDED, "ORDER_CLOSED": PaymentStatus.VOIDED}


@dataclass(frozen=True)
class WireKeys:
    """The merchant's signing identity and WeChat Pay's key for its answers."""

    mchid: str
    cert_serial_no: str
    private_key: rsa.RSAPrivateKey
    platform_key: rsa.RSAPublicKey
    platform_serial: str


def segment(value: str) -> str:
    """Quote an id for a URL path, so that an odd id can only ever name one resource."""
    return quote(value, safe="")


class WechatpayWire:
    """One `requests.Session` to WeChat Pay; build it per process, after any fork."""

    def __init__(
        self,
        base_url: str,
        keys: WireKeys,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.timeout = timeout
        self.session = session or requests.Session()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The verified answer's JSON object ({} for 204); raises the port's errors otherwise."""
        what = f"wechatpay {method} {path.split('?')[0]}"
        text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Authorization": build_authorization(
                path, method, self.keys.mchid, self.keys.cert_serial_no, self.keys.private_key, data=text
            ),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                data=text.encode() if body is not None else None,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise ProviderUnavailable(f"{what}: {type(error).__name__}: {error}") from error
        if not response.ok:
            raise _error(response, what)
        return self._verified(response, what)

    def close(self) -> None:
        self.session.close()

    def _verified(self, response: requests.Response, what: str) -> dict[str, Any]:
        """Check the answer's signature over its raw body before reading anything of it.

        An answer that does not verify is treated as an outage: the same call is asked again."""
        serial = response.headers.get("Wechatpay-Serial", "")
        if serial.upper() != self.keys.platform_serial.upper():
            raise ProviderUnavailable(f"{what}: answer signed with an unknown key serial {serial[:64]!r}")
        try:
            text = response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise ProviderUnavailable(f"{what}: answer is not UTF-8") from None
        signed = rsa_verify(
            response.headers.get("Wechatpay-Timestamp", ""),
            response.headers.get("Wechatpay-Nonce", ""),
            text,
            response.headers.get("Wechatpay-Signature", ""),
            self.keys.platform_key,
        )
        if not signed:
            raise ProviderUnavailable(f"{what}: answer signature does not verify")
        if not text:
            return {}
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ProviderUnavailable(f"{what}: unreadable answer {text[:200]!r}")
        return answer


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(response: requests.Response, what: str) -> Exception:
    """Classify a non-2xx answer. WeChat Pay does not sign the answer to a request whose own
    signature failed, so these are read unverified; none of them is taken as a payment."""
    status = response.status_code
    body = _error_body(response)
    code = body.get("code") if isinstance(body.get("code"), str) else None
    detail = f"{what}: {status} {code or ''} {str(body.get('message') or response.reason)[:200]}"
    if is_transient_status(status):  # 401 SIGN_ERROR, 403 NO_AUTH among them
        return ProviderUnavailable(detail)
    if code in TRANSIENT_CODES:
        return ProviderUnavailable(detail)
    if status == 404:
        return PaymentNotFound(detail) if code in NOT_FOUND_CODES else ProviderUnavailable(detail)
    return ProviderRejected(detail, code=code, http_status=status, status_now=CODE_STATUS.get(code or ""))
