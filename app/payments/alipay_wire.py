"""Alipay's words on the wire: amounts as yuan strings, times in Beijing time.

Shared by the adapter (`alipay.py`) and its notification reader (`alipay_notify.py`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

# Alipay speaks Beijing time without an offset (`yyyy-MM-dd HH:mm:ss`). China has kept UTC+8
# without daylight saving since 1991, so a fixed offset is exact and needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Domestic Alipay trades are in yuan.
CURRENCY = "CNY"

# What Alipay writes for an amount: yuan with exactly two decimals, never negative.
_YUAN = re.compile(r"(0|[1-9][0-9]{0,15})\.[0-9]{2}")


def yuan(amount_cents: int) -> str:
    """1999 -> "19.99", through Decimal: no float ever holds money."""
    return f"{Decimal(amount_cents).scaleb(-2):.2f}"


def cents(amount: object) -> int | None:
    """ "19.99" -> 1999; None for anything that is not exactly a two-decimal, non-negative yuan
    string (so "19.9", "1e3", "-1.00" and 19.99 as a number are all refused)."""
    if not isinstance(amount, str) or not _YUAN.fullmatch(amount):
        return None
    return int(Decimal(amount).scaleb(2))


def beijing(moment: datetime) -> str:
    """An aware datetime as Alipay's Beijing wall-clock time; a naive one is a programming error."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an aware datetime is needed for an Alipay time")
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def beijing_now() -> str:
    return beijing(datetime.now(BEIJING))


def epoch_of(text: object) -> float | None:
    """Alipay's Beijing `yyyy-MM-dd HH:mm:ss` as seconds since the epoch; None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        return None
