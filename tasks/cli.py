"""`celery -A celery_worker saga list|show|retry`: the operator's saga commands.

Registered as a celery sub-command through the `celery.commands` entry point, so it loads the
same app (and settings) as the worker.
"""

from __future__ import annotations

import click
from celery.bin.base import CeleryCommand, CLIContext

from app.bootstrap import Runtime
from app.errors import ServiceError
from app.services import saga_queries
from app.services.order_saga import STATUSES as SAGA_STATUSES
from app.timeutil import rfc3339


def _state(ctx: click.Context) -> Runtime:
    """The runtime of the app that `celery -A` loaded."""
    obj: CLIContext = ctx.obj
    runtime: Runtime = obj.app.ordersaga_runtime
    return runtime


@click.group(name="saga")
def saga() -> None:
    """Inspect sagas and resume FAILED ones."""


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
