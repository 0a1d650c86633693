"""Verifying a provider's webhook signature: HMAC-SHA256 over "<t>.<raw body>", compared in
constant time, with the timestamp within a tolerance so that a captured request can't be
replayed later."""

from __future__ import annotations

import hashlib
import hmac
import re

TOLERANCE_SECONDS = 300

# ASCII only: `str.isdigit()` takes "²", which int() refuses, and hmac.compare_digest refuses a
# str holding anything but ASCII; a header is checked against these before either sees it.
TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"[0-9a-f]{64}")


def expected_signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    signed = timestamp.encode() + b"." + raw_body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(
    secret: str, header: str | None, raw_body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """`header` is `t=<unix seconds>,v1=<hex>` (several v1 values allowed, for secret rotation)."""
    if not header or len(header) > 1000:
        return False
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    candidates = [candidate for candidate in candidates if SIGNATURE.fullmatch(candidate)]
    if timestamp is None or not TIMESTAMP.fullmatch(timestamp) or not candidates:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = expected_signature(secret, timestamp, raw_body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
