"""Prometheus metrics, correct across every API and worker process.

Counters and histograms live in prometheus_client's multiprocess mode: each process writes its
own files under PROMETHEUS_MULTIPROC_DIR and `/metrics` sums them. Figures that the database or the
broker already knows (orders by status, queue depth) are read at scrape time instead, so they
are right even after a process dies. Flower shares the directory (it runs with the app loaded)
but serves its own `flower_*` metrics on its own port, so `/metrics` leaves them out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# The directory must be known before the first metric is created; fall back to one under var/
# so that API and workers started from the repository root share it by default.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path("var/prometheus").absolute()))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import (  # noqa: E402
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402
from sqlalchemy import event  # noqa: E402

# Another library (Flower, imported by the celery command) may have imported prometheus_client
# before the variable was set: pick the multiprocess value class again for our metrics.
values.ValueClass = values.get_value_class()

SAGA_STEPS = Counter(
    "ordersaga_saga_steps_total",
    "Saga steps and compensations run, by step, kind and outcome.",
    ["step", "kind", "outcome"],
)
SAGA_STEP_SECONDS = Histogram(
    "ordersaga_saga_step_duration_seconds",
    "How long a saga step or compensation took.",
    ["step", "kind"],
)
SAGAS_FAILED = Counter(
    "ordersaga_sagas_failed_total",
    "Sagas that ran out of retries and need an operator.",
)
WEBHOOKS = Counter(
    "ordersaga_webhooks_total",
    "Payment webhooks received, by provider and result.",
    ["provider", "result"],
)
FLASH_PURCHASES = Counter(
    "ordersaga_flash_sale_purchases_total",
    "Flash-sale purchase attempts, by outcome.",
    ["outcome"],
)

WEBHOOK_RESULTS = ("processed", "duplicate", "invalid-signature", "amount-mismatch", "not-found", "invalid")
FLASH_OUTCOMES = (
    "accepted",
    "sold-out",
    "limit-exceeded",
    "not-active",
    "rate-limited",
    "overloaded",
    "invalid",
)

# Known label sets start at zero, so dashboards and alerts see the series before the first event.
for _result in WEBHOOK_RESULTS:
    WEBHOOKS.labels(provider="sandbox", result=_result)
for _outcome in FLASH_OUTCOMES:
    FLASH_PURCHASES.labels(outcome=_outcome)

SQL_STATEMENTS = Counter(
    "ordersaga_sql_statements_total",
    "SQL statements issued, by the endpoint or task that issued them.",
    ["source"],
)


# What is running now, named by the entrypoint that runs it: the Flask endpoint, the fast path's
# endpoint, or the Celery task.
sql_source_var: ContextVar[str | None] = ContextVar("sql_source", default=None)


def count_sql_statements(engine: Any) -> None:
    """Count every statement by its source (`flash_sales.purchase`, `orders.saga.reserve_stock`...):
    shows which requests touch the database, and how much."""

    def before_cursor_execute(*_args: Any) -> None:
        SQL_STATEMENTS.labels(source=sql_source_var.get() or "other").inc()

    event.listen(engine, "before_cursor_execute", before_cursor_execute)


GaugeSource = Callable[[], Iterable[GaugeMetricFamily]]


class ScrapeTimeCollector(Collector):
    """Gauges computed when Prometheus scrapes, from sources registered by the app."""

    def __init__(self, sources: list[GaugeSource]) -> None:
        self.sources = sources

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for source in self.sources:
            yield from source()


# Families that other programs write into the shared directory. Flower's command loads the app,
# so the metrics Flower creates afterwards are multiprocess ones and land there too; they are
# Flower's, not this service's, and Flower serves them itself on its own port.
FOREIGN_PREFIXES = ("flower_",)


class OwnMultiProcessCollector(Collector):
    """The families summed from PROMETHEUS_MULTIPROC_DIR, less those of other programs."""

    def __init__(self) -> None:
        self.files = multiprocess.MultiProcessCollector(None)

    def collect(self) -> Iterable[Metric]:
        for family in self.files.collect():
            if not family.name.startswith(FOREIGN_PREFIXES):
                yield family


# The classic text format: every name here is a classic one, which formats 0.0.4 and 1.0.0 write
# alike, and every Prometheus server reads 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(sources: list[GaugeSource]) -> bytes:
    registry = CollectorRegistry()
    registry.register(OwnMultiProcessCollector())
    registry.register(ScrapeTimeCollector(sources))
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    multiprocess.mark_process_dead(pid)
