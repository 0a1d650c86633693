"""Figure 5's second part: one worker with 100,000 orders awaiting payment at once.

A worker holds each payment-timeout ETA task in memory until it is due, and hands all of them
back to the broker on a warm shutdown; a new worker takes them all again. With every deadline
queued at once that would be every order awaiting payment; queued only within the horizon
(app/services/payment_events.py's timeout_horizon), it is the next two sweeps' worth. This
measures both ends: what the worker holds and its memory, and how long a restart takes to be
consuming again, and that no timeout is lost on the way.

The orders come from bench/bulk.py, their deadlines spread evenly over the next payment timeout
from the moment the load starts; the sweep, sent at once rather than waited for, queues the
near ones as beat's would, as many times as it takes (each queues at most `QUEUE_LIMIT`).

None of them is ever paid, so they come due at count / timeout a second (111/s for 100,000 in
15 minutes), and the worker must cancel them as fast. When it cannot, the timeouts already due
wait in the broker's queue (first in, first out), and the ETA tasks queued behind them reach the
worker only once they are due too: the figure then says how many it could not take, how many
orders a second it did time out, and how late.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.bulk import Loader
from bench.everyday import Shop
from bench.flash_sale import pct
from tasks.sweeps import SWEEP_TASK
from tests.support.processes import Process, celery_worker, wait_until

TIMEOUT_TASK = "payments.payment_timeout"
TIMEOUT_QUEUE = "payments"
QUEUE_LIMIT = 5000  # payment_events.queue_near_timeouts' limit per sweep
SHUTDOWN_TIMEOUT = 120.0  # seconds a warm shutdown may take before SIGKILL


def sweep(shop: Shop) -> tuple[float, dict[str, int]]:
    """Send the sweep now; its runtime and counts, from the worker's own log line for it."""
    log = shop.stack.processes["worker"].log_path
    offset = log.stat().st_size
    task_id = shop.sender.send_task(SWEEP_TASK, queue="orders").id
    pattern = re.compile(
        rf"Task {re.escape(SWEEP_TASK)}\[{task_id}\] (succeeded in ([0-9.e-]+)s: (.*)|raised.*)"
    )

    def logged() -> re.Match[str] | None:
        with log.open(errors="replace") as f:
            f.seek(offset)
            return pattern.search(f.read())

    match = wait_until(logged, timeout=600, interval=0.2, what="the sweep")
    assert match is not None  # wait_until returns only once it is
    if match.group(2) is None:
        raise AssertionError(f"the sweep failed: {match.group(0)}")
    return float(match.group(2)), ast.literal_eval(match.group(3))


def rss_mb(process: Process) -> dict[str, float]:
    """VmRSS of the worker's parent and each of its children (the pool), from /proc."""
    assert process.proc is not None
    parent = process.proc.pid
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(entry.name))
    pids = {"parent": parent, **{f"child {i}": pid for i, pid in enumerate(sorted(children), 1)}}
    return {name: _vm_rss_kb(pid) / 1024 for name, pid in pids.items()}


def _vm_rss_kb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    return float("nan")


def held_timeouts(shop: Shop) -> tuple[int, set[str]]:
    """The payment timeouts the worker holds for later (its ETA tasks), and the orders of every
    one it has: held, reserved or running (asked in the order a task moves through them, so
    none is missed)."""
    inspect = shop.sender.control.inspect(timeout=60, limit=1)  # one worker: done at its reply
    scheduled = [entry["request"] for entries in (inspect.scheduled() or {}).values() for entry in entries]
    requests = list(scheduled)
    for replies in (inspect.reserved(), inspect.active()):
        requests += [request for entries in (replies or {}).values() for request in entries]
    held = sum(1 for request in scheduled if request.get("name") == TIMEOUT_TASK)
    return held, {r["kwargs"]["order_id"] for r in requests if r.get("name") == TIMEOUT_TASK}


# How many payment timeouts in a queue have their ETA still ahead (ARGV[1], an ISO time as
# Celery writes them): counted inside Redis, by plain string search rather than decoding, since
# the queue may hold thousands of due ones besides and Redis serves the broker meanwhile.
AHEAD = """
local ahead = 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.find(raw, ARGV[2], 1, true) then
    local eta = string.match(raw, '"eta": "([^"]+)"')
    if eta and eta > ARGV[1] then ahead = ahead + 1 end
  end
end
return ahead
"""


def taken_from_broker(shop: Shop, stuck_after: float = 10.0) -> tuple[float, int]:
    """Wait until the worker has taken every payment timeout not yet due from the broker's
    queue (it takes an ETA task at once, and holds it), or until that count has not fallen for
    `stuck_after` seconds: the queue is first in, first out, and a worker busy with timeouts
    already due takes those behind them only as a pool process frees up. Returns when it
    stopped (perf_counter()) and how many were left."""
    count_ahead = shop.stack_redis.register_script(AHEAD)
    fewest, fell_at = -1, time.perf_counter()

    def taken_or_stuck() -> bool:
        nonlocal fewest, fell_at
        now = datetime.now(UTC).isoformat()
        ahead = int(count_ahead(keys=[TIMEOUT_QUEUE], args=[now, f'"task": "{TIMEOUT_TASK}"']))
        if fewest < 0 or ahead < fewest:
            fewest, fell_at = ahead, time.perf_counter()
        return ahead == 0 or time.perf_counter() - fell_at > stuck_after

    wait_until(taken_or_stuck, timeout=600, interval=1.0, what="the worker to take the ETA tasks")
    taken_at = time.perf_counter() - (stuck_after if fewest else 0.0)
    time.sleep(2)  # the last ones on their way into the worker's timer
    return taken_at, fewest


def in_the_queue(shop: Shop) -> set[str]:
    """The orders of the payment timeouts still in the broker's queue (due, waiting for the
    worker)."""
    orders = set()
    for raw in shop.stack_redis.lrange(TIMEOUT_QUEUE, 0, -1):
        message = json.loads(raw)
        if message.get("headers", {}).get("task") == TIMEOUT_TASK:
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            orders.add(kwargs["order_id"])
    return orders


@dataclass
class Awaiting:
    """The figures of one run, in the order they are taken."""

    count: int
    load_seconds: float = 0.0
    due_by_then: int = 0
    sweeps: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    queued: int = 0
    rss: dict[str, dict[str, float]] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    sent: tuple[int, int] = (0, 0)  # the outbox's payment timeouts: messages, distinct orders
    broker_unacked: int = 0
    left_in_queue: dict[str, int] = field(default_factory=dict)  # ETA tasks not taken, behind due ones
    timed_out: dict[str, tuple[float, int]] = field(default_factory=dict)  # (seconds after the load, count)
    shutdown_seconds: float = 0.0
    killed: bool = False
    consuming_seconds: float = 0.0
    retaken_seconds: float = 0.0
    in_queue: int = 0  # of the queued timeouts still awaiting after the restart: due, in the queue
    lost: int = 0
    late: list[float] = field(default_factory=list)  # seconds past the deadline, each cancelled order
    overdue: tuple[int, float] = (0, 0.0)  # still waiting past the deadline: how many, the oldest's


def measure(shop: Shop, loader: Loader, count: int, concurrency: int) -> Awaiting:
    """Load `count` orders awaiting payment, let the sweep queue the near timeouts, then
    restart the worker; the figures before, while holding, and after."""
    figures = Awaiting(count)
    queued, swept = hold(shop, loader, figures)
    started = restart(shop, figures, concurrency)
    retaken, figures.left_in_queue["after the restart"] = taken_from_broker(shop)
    figures.retaken_seconds = retaken - started
    figures.rss["after the restart"] = rss_mb(shop.stack.processes["worker"])
    waiting = in_the_queue(shop)  # first: a task moves from the queue to the worker, then is done
    figures.held["after the restart"], held_ids = held_timeouts(shop)
    still = {order_id for (order_id,) in shop.sql(_AWAITING + " AND id = ANY(:ids)", ids=list(queued))}
    figures.in_queue = len(waiting & still)
    figures.lost = len(still - held_ids - waiting)
    figures.timed_out["after the restart"] = (time.perf_counter() - swept, _timed_out(shop))
    figures.late, figures.overdue = lateness(shop)
    return figures


def hold(shop: Shop, loader: Loader, figures: Awaiting) -> tuple[set[str], float]:
    """Up to the worker holding the near timeouts; returns the orders whose timeout was queued,
    and when the sweeps were done (perf_counter())."""
    worker = shop.stack.processes["worker"]
    figures.rss["before loading"] = rss_mb(worker)
    started = time.perf_counter()
    loader.awaiting(figures.count)
    loader.analyze("orders", "sagas", "saga_steps", "payments")
    figures.load_seconds = time.perf_counter() - started
    figures.due_by_then = _count(shop, "payment_deadline <= now()")
    while not figures.sweeps or figures.sweeps[-1][1]["timeouts_queued"] >= QUEUE_LIMIT:
        figures.sweeps.append(sweep(shop))
    rows = shop.sql("SELECT id FROM orders WHERE timeout_queued_at IS NOT NULL")
    queued = {order_id for (order_id,) in rows}
    figures.queued = len(queued)
    swept = time.perf_counter()
    _, figures.left_in_queue["holding"] = taken_from_broker(shop)
    figures.rss["holding"] = rss_mb(worker)
    figures.held["holding"], _ = held_timeouts(shop)
    [figures.sent] = shop.sql(
        "SELECT count(*), count(DISTINCT kwargs->>'order_id') FROM outbox_messages WHERE task = :task",
        task=TIMEOUT_TASK,
    )
    figures.broker_unacked = int(shop.stack_redis.hlen("unacked"))
    figures.timed_out["before the restart"] = (time.perf_counter() - swept, _timed_out(shop))
    return queued, swept


def lateness(shop: Shop) -> tuple[list[float], tuple[int, float]]:
    """Seconds from each cancelled order's deadline to the end of its wait for payment; and the
    orders still waiting past their deadline (how many, and how late the oldest is)."""
    late = shop.sql(
        "SELECT extract(epoch FROM s.finished_at - o.payment_deadline) FROM orders o"
        " JOIN sagas g ON g.subject_id = o.id JOIN saga_steps s ON s.saga_id = g.id"
        " WHERE o.cancel_reason = 'payment_timeout' AND s.name = 'await_payment' AND s.kind = 'action'"
    )
    [(count, oldest)] = shop.sql(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(payment_deadline)), 0) FROM orders"
        " WHERE status = 'AWAITING_PAYMENT' AND payment_deadline < now()"
    )
    return [float(seconds) for (seconds,) in late], (int(count), float(oldest))


_AWAITING = "SELECT id FROM orders WHERE status = 'AWAITING_PAYMENT'"  # still waiting


def _count(shop: Shop, where: str) -> int:
    return int(shop.sql(f"SELECT count(*) FROM orders WHERE status = 'AWAITING_PAYMENT' AND {where}")[0][0])


def _timed_out(shop: Shop) -> int:
    """Orders cancelled by their payment timeout: only the awaiting ones can be (the bench's
    own are all paid)."""
    return int(shop.sql("SELECT count(*) FROM orders WHERE cancel_reason = 'payment_timeout'")[0][0])


def restart(shop: Shop, figures: Awaiting, concurrency: int) -> float:
    """SIGTERM the worker (a warm shutdown: it finishes its running tasks and hands its ETA
    tasks back to the broker), then start a new one, timed until it has run a no-op task.
    Returns when the new one started, on perf_counter()'s clock."""
    stack = shop.stack
    old = stack.processes.pop("worker")
    popen = old.proc
    assert popen is not None
    started = time.perf_counter()
    old.stop(timeout=SHUTDOWN_TIMEOUT)
    figures.shutdown_seconds = time.perf_counter() - started
    figures.killed = popen.returncode is not None and popen.returncode < 0
    started = time.perf_counter()
    stack.processes["worker"] = celery_worker(stack.env, stack.workdir, concurrency=concurrency).start()
    shop.chains(1, 1)
    figures.consuming_seconds = time.perf_counter() - started
    return started


def report(figures: Awaiting, concurrency: int) -> None:
    f = figures
    print(
        f"\n{f.count:,} orders awaiting payment at once (deadlines spread over the next payment timeout);"
        f" one celery worker --concurrency {concurrency}\n"
    )
    print(f"  loaded in {f.load_seconds:.1f} s; {f.due_by_then:,} of them were past their deadline by then")
    for number, (seconds, counts) in enumerate(f.sweeps, 1):
        print(
            f"  sweep {number}: {seconds:.2f} s, queued {counts['timeouts_queued']:,} timeouts,"
            f" timed out {counts['overdue']} overdue"
        )
    print(f"  orders whose timeout is queued: {f.queued:,} of {f.count:,}")
    report_memory(f)
    report_restart(f)


def report_memory(f: Awaiting) -> None:
    print(f"\n  {'worker RSS, MB':<22}" + "".join(f"{name:>20}" for name in f.rss))
    for process in sorted({name for rss in f.rss.values() for name in rss}):
        values = "".join(f"{rss.get(process, float('nan')):>20.1f}" for rss in f.rss.values())
        print(f"  {process:<22}{values}")
    total = {name: sum(rss.values()) for name, rss in f.rss.items()}
    print(f"  {'all':<22}" + "".join(f"{value:>20.1f}" for value in total.values()))
    print()
    for moment, held in f.held.items():
        share = f"{held / f.count:.1%} of {f.count:,}"
        print(f"  ETA tasks (payment timeouts) the worker holds, {moment}: {held:,} ({share})")
    print(f"  payment timeouts sent through the outbox by then: {f.sent[0]:,} for {f.sent[1]:,} orders")
    print(f"  the broker's unacked messages while holding: {f.broker_unacked:,}")
    for moment, left in f.left_in_queue.items():
        print(f"  ETA tasks not yet taken, {moment}: {left:,} (behind timeouts already due, in the queue)")
    grown = f.rss["holding"]["parent"] - f.rss["before loading"]["parent"]
    if f.held.get("holding", 0) >= 100:  # fewer say nothing per task
        per_task = grown * 1024 / f.held["holding"]
        print(
            f"  the parent grew {grown:.1f} MB: {per_task:.1f} KB per held task;"
            f" all {f.count:,} would be {per_task * f.count / 1024:.0f} MB"
        )


def report_restart(f: Awaiting) -> None:
    left = f.left_in_queue["after the restart"]
    retaken = f"every held task taken back {f.retaken_seconds:.1f} s" + (
        f" (all but {left:,}, behind due ones in the queue)" if left else ""
    )
    print(
        f"\n  restart: SIGTERM to exit {f.shutdown_seconds:.1f} s{' (SIGKILLed)' if f.killed else ''};"
        f" from its start, a no-op task done {f.consuming_seconds:.1f} s, {retaken}"
    )
    print(
        f"  timeouts lost across the restart: {f.lost} of {f.queued:,} queued"
        f" ({f.in_queue:,} of them due and waiting in the broker's queue for a free process)"
    )
    for moment, (seconds, cancelled) in f.timed_out.items():
        print(
            f"  orders cancelled by their timeout {moment} ({seconds:.0f} s after the sweeps): {cancelled:,}"
        )
    (t0, n0), (t1, n1) = f.timed_out.values()
    if t1 > t0:
        print(f"  the worker timed out {(n1 - n0) / (t1 - t0):.1f} orders/s between the two")
    if f.late:
        print(
            f"  their lateness after the deadline: p50 {pct(f.late, 0.5) / 1000:.1f} s,"
            f" p99 {pct(f.late, 0.99) / 1000:.1f} s, max {max(f.late):.1f} s (n={len(f.late):,})"
        )
    print(f"  still waiting past their deadline: {f.overdue[0]:,}, the oldest {f.overdue[1]:.1f} s")
