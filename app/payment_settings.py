"""The settings of the real payment providers, read only for the providers that are enabled.

Keys are checked when the process starts, by loading them, so that a truncated or swapped PEM
stops every process with one line instead of failing the first buyer's payment. No message
here ever holds a key's value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.setting_values import ConfigError, get, required, url

ALIPAY_GATEWAY = "https://openapi.alipay.com/gateway.do"
WECHATPAY_BASE_URL = "https://api.mch.weixin.qq.com"
STRIPE_API_BASE = "https://api.stripe.com"


@dataclass(frozen=True)
class AlipaySettings:
    app_id: str
    private_key: str = field(repr=False)
    public_key: str = field(repr=False)
    gateway: str = ALIPAY_GATEWAY


@dataclass(frozen=True)
class WechatpaySettings:
    mchid: str
    appid: str
    private_key: str = field(repr=False)
    cert_serial_no: str = ""
    apiv3_key: str = field(default="", repr=False)
    # WeChat Pay's public key (public-key mode) or its platform certificate (certificate mode),
    # and the id that its notifications name in `Wechatpay-Serial`.
    public_key: str = field(default="", repr=False)
    public_key_id: str = ""
    base_url: str = WECHATPAY_BASE_URL


@dataclass(frozen=True)
class StripeSettings:
    secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    api_base: str = STRIPE_API_BASE


@dataclass(frozen=True)
class ProviderSettings:
    alipay: AlipaySettings | None = None
    wechatpay: WechatpaySettings | None = None
    stripe: StripeSettings | None = None


def load_provider_settings(environ: Mapping[str, str], enabled: tuple[str, ...]) -> ProviderSettings:
    return ProviderSettings(
        alipay=_alipay(environ) if "alipay" in enabled else None,
        wechatpay=_wechatpay(environ) if "wechatpay" in enabled else None,
        stripe=_stripe(environ) if "stripe" in enabled else None,
    )


def _why(provider: str) -> str:
    return f"when ORDERSAGA_PAYMENT_PROVIDER enables {provider}"


def _alipay(environ: Mapping[str, str]) -> AlipaySettings:
    why = _why("alipay")
    app_id = required(environ, "ORDERSAGA_ALIPAY_APP_ID", why)
    if not re.fullmatch(r"[0-9]{1,32}", app_id):
        raise ConfigError("ORDERSAGA_ALIPAY_APP_ID must be the app's numeric id")
    return AlipaySettings(
        app_id=app_id,
        private_key=rsa_private_key(environ, "ORDERSAGA_ALIPAY_PRIVATE_KEY", why),
        public_key=rsa_public_key(environ, "ORDERSAGA_ALIPAY_PUBLIC_KEY", why),
        gateway=_base_url(environ, "ORDERSAGA_ALIPAY_GATEWAY", ALIPAY_GATEWAY),
    )


def _wechatpay(environ: Mapping[str, str]) -> WechatpaySettings:
    why = _why("wechatpay")
    mchid = required(environ, "ORDERSAGA_WECHATPAY_MCHID", why)
    if not re.fullmatch(r"[0-9]{1,32}", mchid):
        raise ConfigError("ORDERSAGA_WECHATPAY_MCHID must be the merchant's numeric id")
    serial = required(environ, "ORDERSAGA_WECHATPAY_CERT_SERIAL_NO", why)
    if not re.fullmatch(r"[0-9A-Fa-f]{1,64}", serial):
        raise ConfigError("ORDERSAGA_WECHATPAY_CERT_SERIAL_NO must be the certificate's hex serial number")
    apiv3_key = required(environ, "ORDERSAGA_WECHATPAY_APIV3_KEY", why)
    if len(apiv3_key.encode()) != 32:
        raise ConfigError("ORDERSAGA_WECHATPAY_APIV3_KEY must be exactly 32 bytes")
    public_key_id = required(environ, "ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID", why)
    if not re.fullmatch(r"[0-9A-Za-z_]{1,64}", public_key_id):
        raise ConfigError(
            "ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID must be a PUB_KEY_ID_... or a platform certificate's serial"
        )
    public_key = rsa_public_key(environ, "ORDERSAGA_WECHATPAY_PUBLIC_KEY", why, certificate_ok=True)
    if "BEGIN CERTIFICATE" in public_key:
        certificate_serial = x509.load_pem_x509_certificate(public_key.encode()).serial_number
        if format(certificate_serial, "X") != public_key_id.upper().lstrip("0"):
            raise ConfigError(
                "ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID must be the serial of the platform certificate "
                "in ORDERSAGA_WECHATPAY_PUBLIC_KEY"
            )
    return WechatpaySettings(
        mchid=mchid,
        appid=required(environ, "ORDERSAGA_WECHATPAY_APPID", why),
        private_key=rsa_private_key(environ, "ORDERSAGA_WECHATPAY_PRIVATE_KEY", why),
        cert_serial_no=serial.upper(),
        apiv3_key=apiv3_key,
        public_key=public_key,
        public_key_id=public_key_id,
        base_url=_base_url(environ, "ORDERSAGA_WECHATPAY_BASE_URL", WECHATPAY_BASE_URL),
    )


def _stripe(environ: Mapping[str, str]) -> StripeSettings:
    why = _why("stripe")
    secret_key = required(environ, "ORDERSAGA_STRIPE_SECRET_KEY", why)
    if not re.fullmatch(r"(sk|rk)_(test|live)_[0-9A-Za-z]{8,255}", secret_key):
        raise ConfigError(
            "ORDERSAGA_STRIPE_SECRET_KEY must be a Stripe secret key (sk_live_... or sk_test_...)"
        )
    webhook_secret = required(environ, "ORDERSAGA_STRIPE_WEBHOOK_SECRET", why)
    if not re.fullmatch(r"whsec_[0-9A-Za-z+/=]{8,255}", webhook_secret):
        raise ConfigError("ORDERSAGA_STRIPE_WEBHOOK_SECRET must be an endpoint's signing secret (whsec_...)")
    return StripeSettings(
        secret_key=secret_key,
        webhook_secret=webhook_secret,
        api_base=_base_url(environ, "ORDERSAGA_STRIPE_API_BASE", STRIPE_API_BASE),
    )


def _base_url(environ: Mapping[str, str], name: str, default: str) -> str:
    return url(name, get(environ, name) or default, ("http", "https")).rstrip("/")


def rsa_private_key(environ: Mapping[str, str], name: str, why: str) -> str:
    pem = required(environ, name, why)
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ConfigError(f"{name} must be an RSA private key of at least 2048 bits")
    return pem


def rsa_public_key(environ: Mapping[str, str], name: str, why: str, *, certificate_ok: bool = False) -> str:
    pem = required(environ, name, why)
    key: object
    try:
        if certificate_ok and "BEGIN CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        else:
            key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        kind = "PEM public key or certificate" if certificate_ok else "PEM public key"
        raise ConfigError(f"{name} is not a {kind}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError(f"{name} must be an RSA public key")
    return pem
