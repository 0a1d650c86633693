"""The sandbox API's request body, with the same strict JSON rules as the shop's API."""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas.common import StrictSchema, Text, cents, text

MAX_URL_LENGTH = 2048


class Url(Text, fields.URL):
    """An absolute http(s) URL; `localhost` and bare IP addresses are fine for a test shop."""


class PaymentCreateSchema(StrictSchema):
    amount_cents = cents(minimum=1, required=True)
    currency = Text(
        required=True,
        validate=validate.Regexp(r"\A[A-Z]{3}\Z", error="Must be three upper-case letters (ISO 4217)."),
    )
    callback_url = Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=MAX_URL_LENGTH),
    )
    reference = text(1, 255, required=True)
