"""Flash-sale tasks: giving a cancelled order's units back to the Redis gate."""

from __future__ import annotations

from celery import shared_task

from app.state import state
from sagas.order_saga import GIVE_BACK_TASK


@shared_task(
    name=GIVE_BACK_TASK,
    autoretry_for=(Exception,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=20,
)
def give_back(sale_id: str, order_id: str, user_id: str, quantity: int) -> bool:
    """Exactly once per order (the gate remembers which orders it took back). If Redis lost the
    gate meanwhile, this does nothing: the rebuild from SQL already counts the order as cancelled."""
    return state().flash_gate.give_back(sale_id, order_id, user_id, quantity)
