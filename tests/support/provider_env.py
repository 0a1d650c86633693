"""Well-formed settings of each real provider, with keys made for the test process: enough for a
deployment to start with every provider enabled (nothing here answers for a provider)."""

from __future__ import annotations

from tests.support.keys import private_pem, public_pem, rsa_key


def alipay_env() -> dict[str, str]:
    return {
        "ORDERSAGA_ALIPAY_APP_ID": "2021000000000001",
        "ORDERSAGA_ALIPAY_PRIVATE_KEY": private_pem(rsa_key("app")),
        "ORDERSAGA_ALIPAY_PUBLIC_KEY": public_pem(rsa_key("alipay")),
    }


def wechatpay_env() -> dict[str, str]:
    return {
        "ORDERSAGA_WECHATPAY_MCHID": "1900000001",
        "ORDERSAGA_WECHATPAY_APPID": "wx0000000000000001",
        "ORDERSAGA_WECHATPAY_PRIVATE_KEY": private_pem(rsa_key("merchant")),
        "ORDERSAGA_WECHATPAY_CERT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "ORDERSAGA_WECHATPAY_APIV3_KEY": "0123456789abcdef0123456789abcdef",
        "ORDERSAGA_WECHATPAY_PUBLIC_KEY": public_pem(rsa_key("wechatpay")),
        "ORDERSAGA_WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0119000000012025010100000000000001",
    }


def stripe_env() -> dict[str, str]:
    return {
        "ORDERSAGA_STRIPE_SECRET_KEY": "sk_test_0123456789abcdef",
        "ORDERSAGA_STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdef",
    }


def all_providers_env() -> dict[str, str]:
    return {
        **alipay_env(),
        **wechatpay_env(),
        **stripe_env(),
        "ORDERSAGA_PAYMENT_PROVIDER": "sandbox,alipay,wechatpay,stripe",
    }
