"""Each real provider's settings: required only when it is enabled, checked at start, named in
the one-line message, and never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import load_settings
from app.setting_values import ConfigError
from tests.support.env import service_env
from tests.support.keys import certificate, private_pem, rsa_key
from tests.support.provider_env import alipay_env, stripe_env, wechatpay_env

BASE = service_env("sqlite:///var/never-created.sqlite3", "redis://127.0.0.1:6379/0")


def test_the_sandbox_alone_needs_no_provider_settings() -> None:
    settings = load_settings(BASE)
    assert settings.payment_providers == ("sandbox",) and settings.payment_provider == "sandbox"
    assert settings.providers.alipay is None and settings.providers.stripe is None


def test_every_provider_at_once_the_first_is_the_default() -> None:
    env = {**alipay_env(), **wechatpay_env(), **stripe_env()}
    settings = load_settings(
        {**BASE, **env, "ORDERSAGA_PAYMENT_PROVIDER": "stripe, alipay,wechatpay,sandbox"}
    )
    assert settings.payment_providers == ("stripe", "alipay", "wechatpay", "sandbox")
    assert settings.payment_provider == "stripe"
    assert settings.providers.alipay is not None and settings.providers.alipay.gateway.startswith("https://")
    assert settings.providers.wechatpay is not None
    assert settings.providers.wechatpay.base_url == "https://api.mch.weixin.qq.com"
    assert (
        settings.providers.stripe is not None
        and settings.providers.stripe.api_base == "https://api.stripe.com"
    )
    # No key in a repr, which is what a log line or a traceback would show.
    assert "PRIVATE KEY" not in repr(settings) and "sk_test_" not in repr(settings)


def test_a_key_may_come_from_a_file(tmp_path: Path) -> None:
    env = alipay_env()
    key_file = tmp_path / "app.pem"
    key_file.write_text(env.pop("ORDERSAGA_ALIPAY_PRIVATE_KEY"))
    settings = load_settings(
        {
            **BASE,
            **env,
            "ORDERSAGA_PAYMENT_PROVIDER": "alipay",
            "ORDERSAGA_ALIPAY_PRIVATE_KEY_FILE": str(key_file),
        }
    )
    assert settings.providers.alipay is not None
    assert settings.providers.alipay.private_key == key_file.read_text().strip()


SECRET_MARK = "do-not-print-this-key"
BAD = [
    ("sandbox,paypal", {}, "ORDERSAGA_PAYMENT_PROVIDER"),
    ("sandbox,sandbox", {}, "ORDERSAGA_PAYMENT_PROVIDER"),
    ("alipay", {"ORDERSAGA_ALIPAY_APP_ID": ""}, "ORDERSAGA_ALIPAY_APP_ID"),
    ("alipay", {"ORDERSAGA_ALIPAY_APP_ID": "abc"}, "ORDERSAGA_ALIPAY_APP_ID"),
    (
        "alipay",
        {"ORDERSAGA_ALIPAY_PRIVATE_KEY": f"-----BEGIN PRIVATE KEY-----\n{SECRET_MARK}\n"},
        "ORDERSAGA_ALIPAY_PRIVATE_KEY",
    ),
    ("alipay", {"ORDERSAGA_ALIPAY_PUBLIC_KEY": private_pem(rsa_key("app"))}, "ORDERSAGA_ALIPAY_PUBLIC_KEY"),
    ("alipay", {"ORDERSAGA_ALIPAY_GATEWAY": "ftp://x"}, "ORDERSAGA_ALIPAY_GATEWAY"),
    ("alipay", {"ORDERSAGA_CURRENCY": "USD"}, "ORDERSAGA_CURRENCY"),
    ("wechatpay", {"ORDERSAGA_WECHATPAY_APIV3_KEY": "short"}, "ORDERSAGA_WECHATPAY_APIV3_KEY"),
    ("wechatpay", {"ORDERSAGA_WECHATPAY_MCHID": ""}, "ORDERSAGA_WECHATPAY_MCHID"),
    ("wechatpay", {"ORDERSAGA_WECHATPAY_CERT_SERIAL_NO": "not hex"}, "ORDERSAGA_WECHATPAY_CERT_SERIAL_NO"),
    ("wechatpay", {"ORDERSAGA_WECHATPAY_PUBLIC_KEY": SECRET_MARK}, "ORDERSAGA_WECHATPAY_PUBLIC_KEY"),
    ("wechatpay", {"ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID": ""}, "ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID"),
    ("stripe", {"ORDERSAGA_STRIPE_SECRET_KEY": f"pk_test_{SECRET_MARK}"}, "ORDERSAGA_STRIPE_SECRET_KEY"),
    ("stripe", {"ORDERSAGA_STRIPE_WEBHOOK_SECRET": ""}, "ORDERSAGA_STRIPE_WEBHOOK_SECRET"),
    ("stripe", {"ORDERSAGA_STRIPE_API_BASE": "not a url"}, "ORDERSAGA_STRIPE_API_BASE"),
    ("stripe", {"ORDERSAGA_STRIPE_SECRET_KEY_FILE": "/nonexistent/key"}, "ORDERSAGA_STRIPE_SECRET_KEY"),
]


@pytest.mark.parametrize(("providers", "change", "variable"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_a_bad_provider_setting_is_named_and_never_echoed(
    providers: str, change: dict[str, str], variable: str
) -> None:
    env = {**alipay_env(), **wechatpay_env(), **stripe_env(), "ORDERSAGA_PAYMENT_PROVIDER": providers}
    for name, value in change.items():
        env[name] = value
        if name.endswith("_FILE"):
            env.pop(name.removesuffix("_FILE"))
    with pytest.raises(ConfigError) as raised:
        load_settings({**BASE, **env})
    message = str(raised.value)
    assert variable in message
    assert SECRET_MARK not in message and "PRIVATE KEY" not in message


def test_a_providers_settings_are_not_required_while_it_is_disabled() -> None:
    settings = load_settings(
        {**BASE, "ORDERSAGA_PAYMENT_PROVIDER": "sandbox", "ORDERSAGA_ALIPAY_APP_ID": "x"}
    )
    assert settings.providers.alipay is None


def test_wechatpay_certificate_mode_needs_the_certificates_own_serial_as_its_id() -> None:
    pem, serial = certificate(rsa_key("wechatpay"))
    env = {**BASE, **wechatpay_env(), "ORDERSAGA_PAYMENT_PROVIDER": "wechatpay"}
    env["ORDERSAGA_WECHATPAY_PUBLIC_KEY"] = pem
    env["ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID"] = serial
    assert load_settings(env).providers.wechatpay is not None
    env["ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID"] = "PUB_KEY_ID_0119000000012025010100000000000001"
    with pytest.raises(ConfigError, match="ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID"):
        load_settings(env)
