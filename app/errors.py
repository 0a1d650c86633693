"""Domain errors. Services raise these; the API maps each `code` to an HTTP status.

They carry the contract's stable error slugs but know nothing of HTTP.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "conflict"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    code = "not-found"


class Conflict(ServiceError):
    code = "conflict"


class InvalidInput(ServiceError):
    """Input that is well-formed but refers to something it may not (an unknown goods id, say)."""

    code = "validation"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.errors = {field: [message]}


class IdempotencyKeyReuse(ServiceError):
    code = "idempotency-key-reuse"


class OutOfStock(ServiceError):
    """Not enough stock to reserve: a business outcome, not a fault."""

    code = "insufficient-stock"


class CouponUnavailable(ServiceError):
    """The coupon is taken, used, expired, someone else's or the order is too small for it."""

    code = "conflict"


class InsufficientStock(ServiceError):
    """Not enough stock available to move into a flash sale."""

    code = "insufficient-stock"


class SoldOut(ServiceError):
    code = "sold-out"


class LimitExceeded(ServiceError):
    code = "limit-exceeded"


class NotActive(ServiceError):
    code = "not-active"


class RateLimited(ServiceError):
    code = "rate-limited"
    retry_after = 1


class Overloaded(ServiceError):
    code = "overloaded"
    retry_after = 5


class AmountMismatch(ServiceError):
    code = "amount-mismatch"


class InvalidSignature(ServiceError):
    code = "invalid-signature"


class Unauthorized(ServiceError):
    code = "unauthorized"


class Forbidden(ServiceError):
    code = "forbidden"
