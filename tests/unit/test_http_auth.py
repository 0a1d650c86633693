"""One reading of `Authorization: Bearer <token>` for the shop, its console and the sandbox."""

from __future__ import annotations

import pytest

from app.http_auth import bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc \t", "abc"),  # whitespace around the token is not part of it
        ("Bearer \xa0abc\x85", "abc"),  # nor is a latin-1 header's other whitespace
        ("Bearer abc def", "abc def"),  # a token is what follows the scheme, spaces included
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer \t ", None),
        ("Bearer\tabc", None),  # the scheme ends at a space, not at other whitespace
        (" Bearer abc", None),
        ("Bearerabc", None),
        ("Bearer: abc", None),
        ("Basic abc", None),
        ("abc", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
