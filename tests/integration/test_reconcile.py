"""`celery -A celery_worker saga reconcile` on the real stack: a clean shop reconciles with no
discrepancy, and each seeded discrepancy is reported with the id to look at."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.servers import Server
from tests.support import flash
from tests.support.env import REPO, SANDBOX_API_KEY, process_env
from tests.support.processes import wait_until
from tests.support.stack import Stack, running_stack

SANDBOX_KEY = {"headers": {"Authorization": f"Bearer {SANDBOX_API_KEY}"}}


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    with running_stack(pg_server.url) as running:
        yield running


def reconcile(stack: Stack, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "celery", "-A", "celery_worker", "saga", "reconcile", *options]
    return subprocess.run(
        command, cwd=REPO, env=process_env(stack.env), capture_output=True, text=True, timeout=120
    )


def awaiting(
    stack: Stack, buyer: dict[str, Any], goods_id: str, coupon_id: str | None = None
) -> dict[str, Any]:
    placed = stack.place(buyer, [(goods_id, 1)], coupon_id)
    assert placed.status_code == 202, placed.text
    order = stack.wait_order(placed.json()["id"])
    assert order["status"] == "AWAITING_PAYMENT", order
    return order


def test_a_clean_shop_reconciles_and_every_seeded_discrepancy_is_reported(stack: Stack) -> None:
    tea = stack.goods(stock=10)
    buyer = stack.user()
    coupon = stack.coupon(buyer)

    paid = awaiting(stack, buyer, tea["id"], coupon["id"])
    provider_id = paid["payment"]["provider_payment_id"]
    stack.ok("POST", f"/sandbox/api/payments/{provider_id}/pay", **SANDBOX_KEY)
    assert stack.wait_order(paid["id"], ("CONFIRMED",))["status"] == "CONFIRMED"

    def credited() -> bool:
        return bool(stack.sql("SELECT points_credited FROM orders WHERE id = :id", id=paid["id"])[0][0])

    wait_until(credited, timeout=30, what="the points to be credited")
    cancelled = awaiting(stack, buyer, tea["id"])
    stack.ok("POST", f"/api/v1/orders/{cancelled['id']}/cancel", buyer["token"])
    assert stack.wait_order(cancelled["id"], ("CANCELLED",))["status"] == "CANCELLED"
    awaiting(stack, buyer, tea["id"])  # left awaiting payment: in flight, not a discrepancy
    on_sale = flash.sale(stack, quantity=3)
    bought = flash.buy(stack, on_sale, buyer)
    assert bought.status_code == 202, bought.text
    assert stack.wait_order(bought.json()["order_id"])["status"] == "AWAITING_PAYMENT"

    clean = reconcile(stack, "--settle", "0")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "discrepancies: 0" in clean.stdout
    checks = ("stock sold", "stock reserved", "flash sales", "coupons", "confirmed orders", "money held")
    for check in (*checks, "provider"):
        assert check in clean.stdout, clean.stdout

    other = stack.coupon(buyer)
    with stack.db.begin() as connection:  # the seeded faults, as a bug or a hand edit would leave them
        connection.exec_driver_sql(f"UPDATE goods SET stock_sold = stock_sold + 1 WHERE id = '{tea['id']}'")
        connection.exec_driver_sql(
            f"UPDATE coupons SET status = 'LOCKED', order_id = '{cancelled['id']}' WHERE id = '{other['id']}'"
        )
        connection.exec_driver_sql(f"UPDATE payments SET status = 'FAILED' WHERE order_id = '{paid['id']}'")
        connection.exec_driver_sql(f"UPDATE flash_sales SET units_held = 3 WHERE id = '{on_sale['id']}'")
        connection.exec_driver_sql(
            f"UPDATE flash_sale_buyers SET units = 2 WHERE sale_id = '{on_sale['id']}'"
        )

    found = reconcile(stack, "--settle", "0")
    assert found.returncode == 1, found.stdout + found.stderr
    lines = found.stdout.splitlines()
    assert "discrepancies: 6" in lines, found.stdout

    def reported(check: str, subject: str) -> bool:
        words = [*check.split(), subject]
        return any(line.split()[: len(words)] == words for line in lines)

    assert reported("stock sold", tea["id"]), found.stdout
    assert reported("coupons", other["id"]), found.stdout
    assert reported("confirmed orders", paid["id"]), found.stdout  # confirmed, its payment FAILED
    assert reported("provider", paid["payment"]["id"]), found.stdout  # FAILED here, SUCCEEDED there
    sale_lines = [line for line in lines if line.split()[:3] == ["flash", "sales", on_sale["id"]]]
    assert len(sale_lines) == 2, found.stdout  # its units held, and its buyer's count
    assert any("units_held is 3" in line for line in sale_lines), found.stdout
    assert any(f"buyer {buyer['id']} counts 2" in line for line in sale_lines), found.stdout

    recent = reconcile(stack, "--since", "1h", "--settle", "3600")  # nothing has settled for so long
    assert recent.returncode == 1 and "discrepancies: 5" in recent.stdout, recent.stdout


def test_a_since_that_is_neither_a_duration_nor_a_time_is_refused(stack: Stack) -> None:
    refused = reconcile(stack, "--since", "yesterday")
    assert refused.returncode == 2
    assert "--since" in refused.stderr and "'yesterday'" in refused.stderr
