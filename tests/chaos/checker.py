"""The checker of a chaos run: every invariant of the shop, read from the database and the
provider once the run has settled, and every answer a buyer got held against the final state.

The money and stock invariants are the operators' reconciliation (app/services/reconcile.py),
run with nothing left to settle. What only a run can know is checked here: the stock each goods
started with, the answers the buyers got, and that nothing is left in flight at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from app.db import Database
from app.payments import Providers
from app.services.reconcile import reconcile
from tests.chaos.journeys import NO_ANSWER, Answer, Shop


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str
    detail: str


@dataclass
class Verdict:
    checked: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    def add(self, invariant: str, subject: str, detail: str) -> None:
        self.violations.append(Violation(invariant, subject, detail))


def check(db: Database, providers: Providers, shop: Shop, answers: list[Answer], since: datetime) -> Verdict:
    verdict = Verdict()
    reconciled = reconcile(db, providers, since - timedelta(minutes=1), settle=timedelta(0))
    verdict.checked.update(reconciled.checked)
    for found in reconciled.discrepancies:
        verdict.add(found.check, found.subject, found.detail)
    engine = db.engine
    _stock_conserved(engine, shop, verdict)
    _nothing_in_flight(engine, verdict)
    _points(engine, verdict)
    _answers(engine, shop, answers, verdict)
    return verdict


def _rows(engine: Engine, query: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(query), params))


def _stock_conserved(engine: Engine, shop: Shop, verdict: Verdict) -> None:
    """Every unit each goods started with is available, reserved, sold or held by its sale."""
    started = {g["id"]: g["stock_available"] for g in [*shop.goods, shop.scarce]}
    started[shop.sale["goods_id"]] = shop.sale["quantity"]
    rows = _rows(
        engine,
        """SELECT g.id, g.stock_available + g.stock_reserved + g.stock_sold
                  + COALESCE((SELECT sum(s.units_held) FROM flash_sales s WHERE s.goods_id = g.id), 0)
           FROM goods g""",
    )
    for goods_id, units in rows:
        if goods_id in started and units != started[goods_id]:
            verdict.add("stock conserved", goods_id, f"{units} units accounted for of {started[goods_id]}")
    verdict.checked["stock conserved"] = len(rows)


def _nothing_in_flight(engine: Engine, verdict: Verdict) -> None:
    """Every order is in a terminal state or awaiting payment before its deadline; no saga is
    left running, compensating or failed; no message is left unsent."""
    orders = _rows(
        engine,
        """SELECT id, status FROM orders WHERE status NOT IN ('CONFIRMED', 'CANCELLED', 'REFUNDED')
           AND NOT (status = 'AWAITING_PAYMENT' AND payment_deadline > now())""",
    )
    for order_id, status in orders:
        verdict.add("orders settled", order_id, f"{status} after the run settled")
    verdict.checked["orders settled"] = _rows(engine, "SELECT count(*) FROM orders")[0][0]
    sagas = _rows(
        engine,
        """SELECT s.id, s.status, s.subject_id, (SELECT st.name || ': ' || coalesce(st.error, '')
                  FROM saga_steps st WHERE st.saga_id = s.id AND st.status = 'FAILED' LIMIT 1)
           FROM sagas s WHERE s.status IN ('RUNNING', 'COMPENSATING', 'FAILED')""",
    )
    for saga_id, status, subject, failed in sagas:
        verdict.add(
            "sagas finished", saga_id, f"{status} for {subject}" + (f" ({failed[:120]})" if failed else "")
        )
    verdict.checked["sagas finished"] = _rows(engine, "SELECT count(*) FROM sagas")[0][0]
    unsent = _rows(engine, "SELECT id, task FROM outbox_messages WHERE sent_at IS NULL")
    for message_id, task in unsent:
        verdict.add("outbox drained", str(message_id), f"{task} never sent")
    verdict.checked["outbox drained"] = 1


def _points(engine: Engine, verdict: Verdict) -> None:
    """Each buyer holds exactly the points of their confirmed orders: credited once each."""
    rows = _rows(
        engine,
        """SELECT u.id, u.points, COALESCE((SELECT sum(o.payable_cents / 100) FROM orders o
                  WHERE o.user_id = u.id AND o.status = 'CONFIRMED'), 0)
           FROM users u""",
    )
    for user_id, points, earned in rows:
        if points != earned:
            verdict.add("points once", user_id, f"{points} points for confirmed orders worth {earned}")
    verdict.checked["points once"] = len(rows)


def _answers(engine: Engine, shop: Shop, answers: list[Answer], verdict: Verdict) -> None:
    """What each buyer was told holds in the final state."""
    ids = {a.order_id for a in answers if a.order_id}
    final = {
        row[0]: row
        for row in _rows(
            engine,
            """SELECT o.id, o.user_id, o.status, o.flash_sale_id, p.status FROM orders o
               LEFT JOIN payments p ON p.order_id = o.id""",
        )
        if row[0] in ids
    }
    owners = {user["id"]: number for number, user in shop.users.items()}
    flash_buyers = {
        row[0] for row in _rows(engine, "SELECT user_id FROM orders WHERE flash_sale_id IS NOT NULL")
    }
    placed: dict[int, str] = {}
    checked = 0
    for answer in answers:
        if answer.status == NO_ANSWER:
            continue
        checked += 1
        for problem in _against_final(answer, final.get(answer.order_id or ""), owners, placed):
            verdict.add("answers", answer.order_id or f"journey {answer.journey}", problem)
        sold_out = answer.action == "flash purchase" and answer.detail == "sold-out"
        if sold_out and shop.users[answer.journey]["id"] in flash_buyers:
            verdict.add("answers", f"journey {answer.journey}", "told sold-out, yet holds a flash order")
    verdict.checked["answers"] = checked


# What a buyer was told, and the final states of the order that agree with it.
AGREES = {
    ("checkout pay", 303): ("CONFIRMED", "REFUNDED"),  # paid: kept, or given back
    ("checkout pay", 409): ("CANCELLED",),  # refused: the payment was voided, nothing taken
    ("checkout decline", 303): ("CANCELLED",),
    ("cancel", 200): ("CANCELLED", "REFUNDED"),
    ("cancel", 202): ("CANCELLED", "REFUNDED"),
    ("cancel", 409): ("CONFIRMED",),  # refused: the order was already paid
}
PLACING = ("order", "order+coupon", "order+key", "flash purchase")


def _against_final(
    answer: Answer, order: Any, owners: dict[str, int], placed: dict[int, str]
) -> Iterable[str]:
    said = f"{answer.action} answered {answer.status}"
    if answer.status >= 500 and answer.status != 503:
        yield f"{said}: an error of the service"
    if answer.action.startswith("webhook") and answer.status != 200:
        yield f"{said}: a signed event for a known payment must be received"
    if answer.status == 202 and answer.action in PLACING:
        placed[answer.journey] = str(answer.order_id)
        if order is None:
            yield f"{said}, but the order does not exist"
        elif owners.get(order[1]) != answer.journey:
            yield f"{said}, but the order belongs to another buyer"
    replayed = answer.status == 202 and answer.action == "order+key replayed"
    if replayed and (answer.order_id != placed.get(answer.journey) or answer.detail != "replayed"):
        yield f"{said} with {answer.order_id} ({answer.detail}), not the first answer's order"
    agreeing = AGREES.get((answer.action, answer.status))
    if order is not None and agreeing and order[2] not in agreeing:
        yield f"{said}, yet the order is {order[2]} (payment {order[4]})"


def report_lines(verdict: Verdict, limit: int = 40) -> list[str]:
    lines = ["invariants checked:"]
    lines += [f"  {name:<17} {count}" for name, count in verdict.checked.items()]
    lines.append(f"violations: {len(verdict.violations)}")
    by_kind = Counter(v.invariant for v in verdict.violations)
    lines += [f"  {kind:<17} {count}" for kind, count in by_kind.items()]
    lines += [f"  {v.invariant:<17} {v.subject}  {v.detail}" for v in verdict.violations[:limit]]
    if len(verdict.violations) > limit:
        lines.append(f"  ... and {len(verdict.violations) - limit} more")
    return lines
