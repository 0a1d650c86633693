"""Payment providers as the shop sees them: one port (`port.py`) and an adapter per provider.

Nothing here imports `app.sandbox`: the sandbox is reached over HTTP like any third party.
"""

from __future__ import annotations

from app.config import Settings
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

__all__ = [
    "PaymentNotFound",
    "PaymentProvider",
    "PaymentStatus",
    "ProviderError",
    "ProviderPayment",
    "ProviderRejected",
    "ProviderUnavailable",
    "SandboxProvider",
    "provider_for",
]


def provider_for(settings: Settings) -> PaymentProvider:
    """The adapter that `ORDERSAGA_PAYMENT_PROVIDER` names, configured from `settings`."""
    if settings.payment_provider == "sandbox":
        return SandboxProvider(f"{settings.public_url}/sandbox", settings.sandbox_api_key)
    raise ValueError(f"unknown payment provider {settings.payment_provider!r}")
