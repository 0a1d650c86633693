"""Payment providers as the shop sees them: one port (`port.py`) and an adapter per provider.

Nothing here imports `app.sandbox`: the sandbox is reached over HTTP like any third party.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from app.config import Settings
from app.payments.alipay import AlipayProvider
from app.payments.port import (
    PaymentNotFound,
    PaymentProvider,
    PaymentStatus,
    ProviderError,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
)
from app.payments.sandbox import SandboxProvider
from app.payments.stripe_checkout import StripeProvider
from app.payments.wechatpay import WechatpayProvider

__all__ = [
    "AlipayProvider",
    "PaymentNotFound",
    "PaymentProvider",
    "PaymentStatus",
    "ProviderError",
    "ProviderPayment",
    "ProviderRejected",
    "ProviderUnavailable",
    "Providers",
    "SandboxProvider",
    "StripeProvider",
    "WechatpayProvider",
    "providers_for",
]


class Providers:
    """The adapters of the enabled providers, by name; the first is the default."""

    def __init__(self, adapters: Sequence[PaymentProvider]) -> None:
        if not adapters:
            raise ValueError("at least one payment provider")
        self.default = adapters[0]
        self._by_name = {adapter.name: adapter for adapter in adapters}

    def __getitem__(self, name: str | None) -> PaymentProvider:
        """None is the default: an order that named no provider pays through it."""
        return self.default if name is None else self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[PaymentProvider]:
        return iter(self._by_name.values())


def providers_for(settings: Settings) -> Providers:
    """The adapters that `ORDERSAGA_PAYMENT_PROVIDER` enables, configured from `settings`.
    Each holds HTTP connections: build them in the process that uses them, after any fork."""
    return Providers([_adapter(name, settings) for name in settings.payment_providers])


def _adapter(name: str, settings: Settings) -> PaymentProvider:
    providers = settings.providers
    if name == "sandbox":
        return SandboxProvider(f"{settings.public_url}/sandbox", settings.sandbox_api_key)
    if name == "alipay" and providers.alipay is not None:
        return AlipayProvider(providers.alipay)
    if name == "wechatpay" and providers.wechatpay is not None:
        refunds = f"{settings.public_url}/api/v1/payments/webhooks/wechatpay"
        return WechatpayProvider(providers.wechatpay, refund_notify_url=refunds)
    if name == "stripe" and providers.stripe is not None:
        return StripeProvider(providers.stripe)
    raise ValueError(f"payment provider {name!r} is enabled but not configured")
