"""Opaque, time-ordered ids.

An id is a short prefix naming its kind and a 26-character ULID (Crockford base32: 48 bits of
milliseconds, 80 random bits). Ids sort by creation time, which is what cursor pagination needs.
"""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_REGEX = r"[a-z]{2,4}_[0-9A-HJKMNP-TV-Z]{26}"
ID_PATTERN = re.compile(ID_REGEX)


def ulid() -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def looks_like_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None
