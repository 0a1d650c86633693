"""Reading `Authorization: Bearer <token>`, one way for every caller.

The shop's API, its operator console and flash fast path, and the sandbox provider all take a
bearer token. This module is low-level on purpose (it imports nothing of the project), so that
the shop and the sandbox, which must not import each other, can both use it.
"""

from __future__ import annotations


def bearer_token(header: str | None) -> str | None:
    """The token of an Authorization header, or None: no header, another scheme, or no token.

    The scheme is what comes before the first space, in any case (`bearer`, `BEARER`); the token
    is the rest without surrounding whitespace. Comparing it with a secret is the caller's job,
    in constant time (`hmac.compare_digest`).
    """
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not token or scheme.lower() != "bearer":
        return None
    return token
