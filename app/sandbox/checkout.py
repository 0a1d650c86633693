"""The buyer's side of the sandbox provider: the checkout page a shop sends its buyer to.

`GET /sandbox/checkout/<id>` shows the amount, the reference and two buttons; the form POSTs to
`.../pay` or `.../decline`, which settle the payment through `service.settle` (the same
compare-and-set the API uses, so the webhook goes out the same way) and answer 303 See Other
back to `GET /sandbox/checkout/<id>`, which then shows the outcome (Post/Redirect/Get): the
buyer's reload or back button only reads the page again, never posts the form a second time.
Once settled, the page links back to the shop.

No authentication, as at a real provider: the payment id is unguessable, and the page reveals
nothing but the amount and the shop's reference. A plain HTML form, no script; the page may not
be framed, and a cross-site form post is refused (the Origin header, which browsers send with
every POST, must be this site's).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, render_template_string, request, url_for

from app.sandbox import service
from app.sandbox.deps import deps
from app.sandbox.models import FAILED, PENDING, REFUNDED, SUCCEEDED, VOIDED, SandboxPayment

blp = Blueprint("sandbox_checkout", __name__, url_prefix="/sandbox/checkout")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": with it, browsers send `Origin: null` on the form post, which _same_origin
    # must refuse. Same-origin still sends nothing to other sites.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# Rendered with Flask's render_template_string, which autoescapes every value.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }} · Sandbox checkout</title>
<style>
  :root { color-scheme: light; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
         background: #f3f4f6; color: #111827;
         font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
  main { width: 100%; max-width: 420px; margin: 24px; padding: 32px; background: #fff;
         border-radius: 12px; box-shadow: 0 1px 3px rgba(0,0,0,.08), 0 8px 24px rgba(0,0,0,.06); }
  .brand { margin: 0 0 24px; font-size: 13px; letter-spacing: .08em; text-transform: uppercase;
           color: #6b7280; }
  .brand b { color: #4f46e5; }
  h1 { margin: 0 0 8px; font-size: 22px; }
  .amount { margin: 8px 0 24px; font-size: 36px; font-weight: 700; font-variant-numeric: tabular-nums; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 6px 16px; margin: 0 0 24px;
       font-size: 14px; }
  dt { color: #6b7280; }
  dd { margin: 0; word-break: break-all; }
  .status { display: inline-block; padding: 0 8px; border-radius: 999px; background: #e5e7eb;
            font-size: 13px; }
  .status.succeeded { background: #d1fae5; color: #065f46; }
  .status.failed, .status.voided { background: #fee2e2; color: #991b1b; }
  .status.refunded { background: #e0e7ff; color: #3730a3; }
  .actions { display: flex; gap: 12px; }
  .actions form { flex: 1; margin: 0; }
  button { width: 100%; padding: 12px 16px; border: 0; border-radius: 8px; font: inherit;
           font-weight: 600; cursor: pointer; }
  .pay { background: #4f46e5; color: #fff; }
  .pay:hover { background: #4338ca; }
  .decline { background: #fff; color: #374151; box-shadow: inset 0 0 0 1px #d1d5db; }
  .decline:hover { background: #f9fafb; }
  .message { margin: 0 0 24px; color: #374151; }
  .back { margin: 0; }
  .back a { color: #4f46e5; font-weight: 600; text-decoration: none; }
  .back a:hover { text-decoration: underline; }
  .note { margin: 24px 0 0; font-size: 12px; color: #9ca3af; }
</style>
</head>
<body>
<main>
  <p class="brand"><b>Sandbox</b> payments</p>
  <h1>{{ title }}</h1>
  {% if message %}<p class="message">{{ message }}</p>{% endif %}
  {% if payment %}
  <p class="amount">{{ amount }}</p>
  <dl>
    <dt>Reference</dt><dd>{{ payment.reference }}</dd>
    <dt>Payment</dt><dd>{{ payment.id }}</dd>
    <dt>Status</dt><dd><span class="status {{ payment.status }}">{{ payment.status }}</span></dd>
  </dl>
  {% if payment.status == pending %}
  <div class="actions">
    <form method="post" action="{{ pay_url }}">
      <button type="submit" class="pay">Pay</button>
    </form>
    <form method="post" action="{{ decline_url }}">
      <button type="submit" class="decline">Decline</button>
    </form>
  </div>
  {% elif shop_url %}
  <p class="back"><a href="{{ shop_url }}">Back to the shop</a></p>
  {% endif %}
  {% endif %}
  <p class="note">This is a test provider: no real money moves.</p>
</main>
</body>
</html>
"""


# The heading and message of a settled payment's page, by status.
OUTCOMES = {
    SUCCEEDED: ("Payment received", "Thank you: the shop is notified of your payment."),
    FAILED: ("Payment declined", "The payment was declined."),
    VOIDED: ("Payment cancelled", "The shop cancelled this payment."),
    REFUNDED: ("Payment refunded", "The shop gave this payment back."),
}


def format_amount(amount_cents: int, currency: str) -> str:
    """`CNY 32.50` from 3250 cents: integer arithmetic, never a float."""
    sign = "-" if amount_cents < 0 else ""
    units, cents = divmod(abs(amount_cents), 100)
    return f"{currency} {sign}{units}.{cents:02d}"


@blp.get("/<payment_id>")
def show(payment_id: str) -> Response:
    """The buttons while the payment is pending, its outcome once settled.

    Also the page a settling post redirects to, so it must only read: reloading it is harmless.
    """
    with deps().db.uow() as uow:
        try:
            payment = service.get_payment(uow, payment_id)
        except service.PaymentNotFound:
            return _not_found()
    if payment.status == PENDING:
        return _page("Pay", payment=payment)
    title, message = OUTCOMES.get(payment.status, ("Payment", f"This payment is {payment.status}."))
    return _page(title, payment=payment, message=message)


@blp.post("/<payment_id>/pay")
def pay(payment_id: str) -> Response:
    return _settle(payment_id, "succeeded")


@blp.post("/<payment_id>/decline")
def decline(payment_id: str) -> Response:
    return _settle(payment_id, "failed")


def _settle(payment_id: str, outcome: service.Outcome) -> Response:
    if not _same_origin():
        return _page("Not allowed", status=403, message="This form can only be sent from its own page.")
    with deps().db.uow() as uow:
        try:
            service.settle(uow, payment_id, outcome)
        except service.PaymentNotFound:
            return _not_found()
        except service.WrongStatus as refused:
            # A form sent again from a stale page (another tab, an old history entry).
            payment = service.get_payment(uow, payment_id)
            message = f"This payment is already {refused.status_now}."
            return _page("Already settled", payment=payment, message=message, status=409)
    # 303, not 302: the browser follows with a GET whatever the method was. A relative Location
    # resolves against the address the buyer used, whatever proxy is in front.
    location = url_for(".show", payment_id=payment_id)
    return Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


def _same_origin() -> bool:
    """Refuse a form posted from another site; a client that sends no Origin is let through."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = {_origin(request.host_url), _origin(deps().settings.public_url)}
    return origin.rstrip("/") in allowed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _shop_url(callback_url: str) -> str | None:
    """Where "Back to the shop" leads: the root of the site that takes this payment's webhooks.

    The create API carries no return URL and the sandbox knows none of the shop's pages, so the
    way back is the callback URL's origin: for this shop, the origin of its ORDERSAGA_PUBLIC_URL.
    Built from scheme, host and port only: credentials in the callback URL (a shop may use basic
    auth for its webhooks) must not reach the buyer, nor may anything but http(s) reach an href.
    """
    parts = urlsplit(callback_url)
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return None
    if ":" in host:  # an IPv6 address, which urlsplit gives without its brackets
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}/"


def _not_found() -> Response:
    return _page("Payment not found", status=404, message="There is no payment at this address.")


def _page(
    title: str, *, status: int = 200, payment: SandboxPayment | None = None, **context: Any
) -> Response:
    html = render_template_string(
        PAGE,
        title=title,
        payment=payment,
        pending=PENDING,
        amount=format_amount(payment.amount_cents, payment.currency) if payment else None,
        pay_url=url_for(".pay", payment_id=payment.id) if payment else None,
        decline_url=url_for(".decline", payment_id=payment.id) if payment else None,
        shop_url=_shop_url(payment.callback_url) if payment else None,
        **{"message": None, **context},
    )
    return Response(html, status=status, mimetype="text/html", headers=SECURITY_HEADERS)
