"""`celery -A celery_worker saga list|show|retry|reconcile`: the operator's saga commands.

Registered as a celery sub-command through the `celery.commands` entry point, so it loads the
same app (and settings) as the worker.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from celery.bin.base import CeleryCommand, CLIContext

from app.bootstrap import Runtime
from app.errors import ServiceError
from app.services import reconcile, saga_queries
from app.services.order_saga import STATUSES as SAGA_STATUSES
from app.timeutil import as_utc, rfc3339, utcnow


def _state(ctx: click.Context) -> Runtime:
    """The runtime of the app that `celery -A` loaded."""
    obj: CLIContext = ctx.obj
    runtime: Runtime = obj.app.ordersaga_runtime
    return runtime


@click.group(name="saga")
def saga() -> None:
    """Inspect sagas, resume FAILED ones, and reconcile money and stock."""


@saga.command(name="list", cls=CeleryCommand)
@click.option("--status", type=click.Choice(SAGA_STATUSES), default=None, help="Only sagas in this status.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_context
def list_sagas(ctx: click.Context, status: str | None, limit: int) -> None:
    """The most recently moved sagas first."""
    app_state = _state(ctx)
    with app_state.db.uow() as uow:
        sagas = saga_queries.recently_moved(uow, status, limit=limit)
    if not sagas:
        click.echo("no sagas")
    for item in sagas:
        step = next((s for s in item.steps if s.kind == "action" and s.position == item.position), None)
        click.echo(
            f"{item.id}  {item.status:<16} order {item.subject_id}  step {step.name if step else '-':<15} "
            f"moved {rfc3339(item.updated_at)}"
        )


@saga.command(name="show", cls=CeleryCommand)
@click.argument("saga_id")
@click.pass_context
def show(ctx: click.Context, saga_id: str) -> None:
    """One saga's timeline of steps and compensations."""
    app_state = _state(ctx)
    try:
        with app_state.db.uow() as uow:
            item = saga_queries.get_saga(uow, saga_id)
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"saga {item.id} ({item.type}) for order {item.subject_id}: {item.status}")
    for step in item.steps:
        moved = step.finished_at or step.started_at
        when = rfc3339(moved) if moved else "-"
        failure = f"  error: {step.error}" if step.error else ""
        click.echo(
            f"  {step.kind:<12} {step.name:<15} {step.status:<9} attempts {step.attempts}  {when}{failure}"
        )


@saga.command(name="retry", cls=CeleryCommand)
@click.argument("saga_id")
@click.pass_context
def retry(ctx: click.Context, saga_id: str) -> None:
    """Resume a FAILED saga from the step that failed."""
    app_state = _state(ctx)
    try:
        item = app_state.engine.retry(saga_id)
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"saga {item.id} resumed: {item.status}")


@saga.command(name="reconcile", cls=CeleryCommand)
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Orders and payments created since: a duration back from now (90m, 24h, 7d) or an RFC 3339 time.",
)
@click.option(
    "--settle",
    type=click.IntRange(0),
    default=600,
    show_default=True,
    help="Seconds a payment, an order or a refund may still be moving before it is judged.",
)
@click.pass_context
def reconcile_command(ctx: click.Context, since: str, settle: int) -> None:
    """Check money and stock against the database and the providers; read-only.

    Exits 1 with the list of discrepancies if there is any."""
    app_state = _state(ctx)
    start = _since(since)
    report = reconcile.reconcile(app_state.db, app_state.providers, start, timedelta(seconds=settle))
    click.echo(f"reconcile: orders and payments since {rfc3339(start)}, each settled for {settle} s")
    for check, count in report.checked.items():
        click.echo(f"  {check:<17} {count} checked")
    click.echo(f"discrepancies: {len(report.discrepancies)}")
    for found in report.discrepancies:
        click.echo(f"  {found.check:<17} {found.subject}  {found.detail}")
    if report.discrepancies:
        ctx.exit(1)


def _since(value: str) -> datetime:
    """A duration back from now (`90m`, `24h`, `7d`) or an RFC 3339 time."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    number, unit = value[:-1], value[-1:]
    if unit in units and number.isdecimal():
        return utcnow() - timedelta(**{units[unit]: int(number)})
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a duration (24h) nor an RFC 3339 time", param_hint="--since"
        ) from None
