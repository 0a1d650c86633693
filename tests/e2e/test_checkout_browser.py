"""A buyer pays in a real browser: headless Chromium on the sandbox's checkout page, against the
whole deployment (gunicorn serving the shop and the sandbox, a celery worker on every queue,
beat, PostgreSQL and a private Redis).

The order waits for payment; the buyer opens its checkout URL and clicks "Pay"; the sandbox
settles the payment, redirects the browser back to the checkout URL (which now shows the outcome,
so a reload posts nothing) and its `sandbox` worker delivers the signed webhook to the shop, which
confirms the order. Chromium and chromedriver are Debian's (scripts/browser.py installs them
when missing), driven by Selenium; nothing is fetched from outside the package archive.
On the same deployment: the sandbox worker retries a refused webhook with back-off.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from scripts.servers import Server
from tests.support.browser import PAGE_TIMEOUT, chromium
from tests.support.env import SANDBOX_API_KEY
from tests.support.processes import wait_until
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.slow

HEADING = "const h = document.querySelector('h1'); return h ? h.textContent.trim() : null;"


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    with running_stack(pg_server.url) as running:
        yield running


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[object]:
    profile = Path(tempfile.mkdtemp(prefix="ordersaga-chromium-"))
    with chromium(profile, Path(stack.workdir) / "chromedriver.log") as driver:
        yield driver


def test_a_buyer_pays_at_checkout_in_a_browser_and_the_order_is_confirmed(
    stack: Stack, browser: object
) -> None:
    from selenium.common.exceptions import (
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    tea = stack.goods(stock=5, price_cents=1625)
    buyer = stack.user()
    placed = stack.place(buyer, [(tea["id"], 2)])
    assert placed.status_code == 202, placed.text
    order = stack.wait_order(placed.json()["id"])
    assert order["status"] == "AWAITING_PAYMENT", order
    payment = order["payment"]
    assert payment["checkout_url"].startswith(f"{stack.base_url}/sandbox/checkout/")

    browser.get(payment["checkout_url"])
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "CNY 32.50" in page and order["id"] in page and "pending" in page, page
    browser.find_element(By.XPATH, "//button[normalize-space()='Pay']").click()
    try:
        # Read the heading with a script in whatever document is current: holding element
        # references across the navigation races the page swap (stale or foreign nodes).
        WebDriverWait(
            browser, PAGE_TIMEOUT, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
        ).until(lambda driver: driver.execute_script(HEADING) == "Payment received")
    except TimeoutException:
        raise AssertionError(f"no result page; the browser shows:\n{browser.page_source}") from None
    assert "succeeded" in browser.find_element(By.TAG_NAME, "body").text
    # Redirected after the post: the address is the page's own, not `.../pay`, so a reload
    # only reads it again.
    assert browser.current_url == payment["checkout_url"]
    back = browser.find_element(By.LINK_TEXT, "Back to the shop").get_attribute("href")
    assert back == f"{stack.base_url}/", back
    browser.refresh()
    assert browser.current_url == payment["checkout_url"]
    assert browser.execute_script(HEADING) == "Payment received", browser.page_source
    assert "Already settled" not in browser.page_source

    at_provider = stack.ok(
        "GET",
        f"/sandbox/api/payments/{payment['provider_payment_id']}",
        headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"},
    )
    assert at_provider["status"] == "succeeded"
    events = stack.sql(
        "SELECT type, callback_url FROM sandbox_webhook_deliveries WHERE payment_id = :id",
        id=payment["provider_payment_id"],
    )
    assert [(e.type, e.callback_url) for e in events] == [
        ("payment.succeeded", f"{stack.base_url}/api/v1/payments/webhooks/sandbox")
    ]

    confirmed = stack.wait_order(order["id"], ("CONFIRMED",), timeout=60)
    assert confirmed["payment"]["status"] == "SUCCEEDED", confirmed

    def recorded() -> Any:
        [row] = stack.sql(
            "SELECT delivered_at, last_status_code FROM sandbox_webhook_deliveries WHERE payment_id = :id",
            id=payment["provider_payment_id"],
        )
        return row if row.delivered_at is not None else None

    # The sandbox worker records the delivery after the shop has answered, while a shop worker
    # confirms the order: either can come first.
    delivered = wait_until(recorded, timeout=30, what="the sandbox to record the delivery")
    assert delivered.last_status_code == 200


def test_the_sandbox_worker_retries_a_refused_webhook_until_it_gets_a_2xx(stack: Stack) -> None:
    """The delivery task's back-off on a real worker: a receiver that answers 500, then 200."""
    answers, received = [500], []

    @Request.application  # type: ignore[arg-type]
    def receiver(request: Request) -> Response:
        received.append(request.get_data())
        status = answers.pop(0) if answers else 200
        return Response(json.dumps({"status": status}), status=status, mimetype="application/json")

    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    key: dict[str, Any] = {"headers": {"Authorization": f"Bearer {SANDBOX_API_KEY}"}}
    try:
        payment = stack.ok(
            "POST",
            "/sandbox/api/payments",
            json={
                "amount_cents": 990,
                "currency": "CNY",
                "callback_url": f"http://127.0.0.1:{server.server_port}/hook",
                "reference": "retry-test",
            },
            **key,
        )
        stack.ok("POST", f"/sandbox/api/payments/{payment['id']}/pay", **key)

        def delivered() -> Any:
            rows = stack.sql(
                "SELECT attempts, delivered_at, last_status_code FROM sandbox_webhook_deliveries"
                " WHERE payment_id = :id",
                id=payment["id"],
            )
            return rows[0] if rows and rows[0].delivered_at is not None else None

        row = wait_until(delivered, timeout=30, what=f"the webhook to be delivered\n{stack.logs()}")
        assert (row.attempts, row.last_status_code) == (2, 200)
        assert len(received) == 2 and received[0] == received[1]
        assert json.loads(received[0])["type"] == "payment.succeeded"
    finally:
        server.shutdown()
        server.server_close()
