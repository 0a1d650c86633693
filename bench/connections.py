"""`POST /orders` throughput and p99 against keep-alive connections, beside `GET /healthz`.

On the real stack (bench/everyday.py's: gunicorn -w 2, one celery worker, beat, PostgreSQL,
Redis), printed as a table and drawn as one PNG (matplotlib, Agg).

    .venv/bin/python -m bench.connections [--connections 1,2,4,8,16,32,64] [--orders 500]
                                          [--rounds 3] [--out docs/post_orders_connections.png]

A point is one connection count: a `/healthz` blast, then a `POST /orders` blast of as many
requests (`--orders`, one line each, bench/everyday.py's Shop.placing), both over that many
keep-alive connections (bench/load.py's closed-loop client), then a wait until the saga worker
has taken every order out of PENDING. So the worker competes for the cores during the blast, as it
does in production, but no point inherits the backlog of the one before it, which would slow the
later points only.

The rounds are interleaved: each round measures every connection count once, in turn, ascending
in odd rounds and descending in even ones, so that the machine's drift (it is shared) and the
growing orders table fall on every count alike rather than on the last ones. Each figure is the
median over the rounds, with the lowest and highest beside it (the bars in the plot).

The payment timeout is raised to an hour so that no cancellation lands within the run: the
orders stay AWAITING_PAYMENT, and between the points the worker has only beat's sweep (one a minute).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from bench.everyday import Shop, expect, shop_on_stack, spread, stack_arguments
from bench.flash_sale import pct
from bench.load import Result
from tests.support.processes import wait_until

DEFAULT_CONNECTIONS = "1,2,4,8,16,32,64"
NO_TIMEOUT = {"ORDERSAGA_PAYMENT_TIMEOUT_SECONDS": "3600"}
STACK = "gunicorn -w 2 (4 threads each), one celery worker --concurrency 2 (nice 10), beat, PostgreSQL, Redis"


@dataclass(frozen=True)
class Point:
    """One connection count in one round: its `/healthz` blast and its `POST /orders` blast."""

    connections: int
    trivial: Result
    orders: Result

    @property
    def p50(self) -> float:
        return pct([reply.seconds for reply in self.orders.replies], 0.5)

    @property
    def p99(self) -> float:
        return pct([reply.seconds for reply in self.orders.replies], 0.99)

    @property
    def ratio(self) -> float:
        return self.orders.per_second / self.trivial.per_second


# -- measuring ---------------------------------------------------------------------------------


def settle(shop: Shop) -> None:
    """Wait until the worker has taken every order placed so far out of PENDING (to
    AWAITING_PAYMENT, or cancelled), so that the next blast starts with the worker idle."""

    def drained() -> bool:
        return bool(shop.sql("SELECT count(*) FROM orders WHERE status = 'PENDING'")[0][0] == 0)

    wait_until(drained, timeout=900, interval=0.1, what="the orders to leave PENDING")


def point(shop: Shop, connections: int, orders: int) -> Point:
    trivial = expect(shop.blast(shop.trivial(orders), connections), 200, "/healthz")
    placed = expect(shop.blast(shop.placing(orders), connections), 202, "orders")
    settle(shop)
    return Point(connections, trivial, placed)


def warm_up(shop: Shop, connections: int, buyers: int) -> None:
    """The first requests of a gunicorn worker fill its pools, its token cache and SQLAlchemy's
    compiled statements: they are paid for here, not by the first point of round 1."""
    shop.blast(shop.trivial(2000), connections)
    expect(shop.blast(shop.placing(2 * buyers), connections), 202, "warm-up orders")
    settle(shop)


def measure(shop: Shop, args: argparse.Namespace) -> dict[int, list[Point]]:
    points: dict[int, list[Point]] = {count: [] for count in args.connections}
    for number in range(1, args.rounds + 1):
        counts = args.connections if number % 2 else args.connections[::-1]
        print(
            f"round {number} of {args.rounds}: connections {', '.join(map(str, counts))} ", end="", flush=True
        )
        started = time.perf_counter()
        for count in counts:
            points[count].append(point(shop, count, args.orders))
        print(f"({time.perf_counter() - started:.0f} s)", flush=True)
    return points


# -- the table ---------------------------------------------------------------------------------


def report(points: dict[int, list[Point]], args: argparse.Namespace, machine: str) -> None:
    print(
        f"\nPOST /orders against connections: {args.rounds} round(s), interleaved, of {args.orders} "
        f"requests per blast; {STACK}; {machine}; median [lowest-highest] over the rounds\n"
    )
    header = ("connections", "POST req/s", "p50 ms", "p99 ms", "/healthz req/s", "ratio")
    widths = (11, 16, 19, 21, 18, 18)
    print("  " + " ".join(f"{name:>{width}}" for name, width in zip(header, widths, strict=True)))
    for count, rounds in points.items():
        cells = (
            str(count),
            spread([p.orders.per_second for p in rounds]),
            spread([p.p50 for p in rounds], "{:.1f}"),
            spread([p.p99 for p in rounds], "{:.1f}"),
            spread([p.trivial.per_second for p in rounds]),
            spread([p.ratio for p in rounds], "{:.3f}"),
        )
        print("  " + " ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True)))


def statuses(shop: Shop) -> str:
    """Where every order placed ended, to show that the drain was to AWAITING_PAYMENT."""
    rows = shop.sql("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
    return ", ".join(f"{status} {count}" for status, count in rows)


# -- the plot ----------------------------------------------------------------------------------


def machine() -> str:
    """The machine named on the plot and in the table: figures from another compare only as ratios."""
    model = platform.processor() or platform.machine()
    memory = ""
    with open("/proc/cpuinfo") as cpuinfo:
        models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 2**20:.0f} GiB"
    return f"{os.cpu_count()} cores, {models[0] if models else model}{memory}"


def commit() -> str:
    """The code measured: the commit, and whether the work tree differs from it."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, check=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {sha.stdout.strip()}" + (" with uncommitted changes" if dirty.stdout.strip() else "")


def bars(values: Sequence[Sequence[float]]) -> tuple[list[float], list[list[float]]]:
    """Medians, and matplotlib's yerr (distances down to the lowest and up to the highest)."""
    medians = [statistics.median(v) for v in values]
    down = [m - min(v) for m, v in zip(medians, values, strict=True)]
    up = [max(v) - m for m, v in zip(medians, values, strict=True)]
    return medians, [down, up]


def throughput(ax: Axes, points: dict[int, list[Point]]) -> None:
    """Both endpoints' req/s on one log axis: /healthz is an order of magnitude faster, and on a
    log axis the two curves keep their shapes side by side."""
    counts = list(points)
    orders, orders_err = bars([[p.orders.per_second for p in r] for r in points.values()])
    trivial, trivial_err = bars([[p.trivial.per_second for p in r] for r in points.values()])
    ax.errorbar(
        counts, orders, yerr=orders_err, color="tab:blue", marker="o", capsize=3, label="POST /orders req/s"
    )
    ax.errorbar(
        counts,
        trivial,
        yerr=trivial_err,
        color="grey",
        marker=".",
        ls="--",
        capsize=3,
        label="GET /healthz req/s",
    )
    for count, value in zip(counts, orders, strict=True):
        ax.annotate(
            f"{value:.0f}", (count, value), textcoords="offset points", xytext=(7, 5), color="tab:blue"
        )
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("requests per second (log scale)")


def latency(ax: Axes, points: dict[int, list[Point]]) -> None:
    p99, p99_err = bars([[p.p99 for p in r] for r in points.values()])
    ax.errorbar(
        list(points),
        p99,
        yerr=p99_err,
        color="tab:red",
        marker="s",
        ls=":",
        capsize=3,
        label="POST /orders p99",
    )
    ax.set_ylim(bottom=0)
    ax.set_ylabel("POST /orders p99, ms", color="tab:red")
    ax.tick_params(axis="y", colors="tab:red")


def draw(points: dict[int, list[Point]], args: argparse.Namespace, machine: str) -> None:
    figure = Figure(figsize=(10, 6), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    throughput(ax, points)
    twin = ax.twinx()
    latency(twin, points)
    ax.set_xscale("log", base=2)
    ax.set_xlim(min(points) / 1.4, max(points) * 1.4)  # room for the labels at both ends
    ax.xaxis.set_major_locator(FixedLocator(list(points)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlabel("keep-alive connections (closed loop: one request in flight on each)")
    ax.grid(True, which="major", alpha=0.3)
    handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    rounds = f"{args.rounds} round{'s' if args.rounds != 1 else ''}"
    figure.suptitle(
        f"POST /orders against connections, beside GET /healthz\n{machine}; everything on the one machine:\n"
        f"{STACK}, the load generator\n{rounds}, interleaved, of {args.orders} requests per "
        f"point; median, bars lowest-highest; {commit()}, {when}",
        fontsize="small",
    )
    figure.savefig(args.out)
    print(f"\nplot: {args.out}")


# -- the command -------------------------------------------------------------------------------


def connection_counts(text: str) -> list[int]:
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("connection counts are whole numbers of 1 or more")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--connections", type=connection_counts, default=connection_counts(DEFAULT_CONNECTIONS)
    )
    parser.add_argument("--orders", type=int, default=500, help="requests per blast, each endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/post_orders_connections.png"))
    stack_arguments(parser)
    args = parser.parse_args()
    if not args.out.parent.is_dir():
        parser.error(f"--out: no folder {args.out.parent}")
    started, name = time.perf_counter(), machine()
    with shop_on_stack(args, **NO_TIMEOUT) as shop:
        warm_up(shop, max(args.connections), args.buyers)
        points = measure(shop, args)
        orders = statuses(shop)
    report(points, args, name)
    print(f"\n  orders at the end: {orders}; {time.perf_counter() - started:.0f} s in all")
    draw(points, args, name)


if __name__ == "__main__":
    main()
