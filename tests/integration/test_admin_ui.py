"""The operators' HTML view of sagas."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extension import runtime
from app.timeutil import utcnow
from sagas.models import Saga
from tests.support.api import ADMIN, bearer, create_goods, create_user
from tests.support.databases import truncate_all
from tests.support.env import ADMIN_TOKEN, settings_for


def _order(client: FlaskClient) -> dict[str, str]:
    buyer, goods = create_user(client), create_goods(client)
    body = {"items": [{"goods_id": goods["id"], "quantity": 1}]}
    response = client.post("/api/v1/orders", json=body, headers=bearer(buyer["token"]))
    return {"saga_id": response.get_json()["saga"]["id"], "token": buyer["token"]}


def test_without_the_operator_a_browser_is_sent_to_sign_in(client: FlaskClient) -> None:
    page = client.get("/admin/sagas", headers={"Accept": "text/html"})
    assert page.status_code == 302 and "/admin/login" in page.headers["Location"]
    assert client.get("/admin/sagas").status_code == 401
    user = create_user(client)
    assert client.get("/admin/sagas", headers=bearer(user["token"])).status_code == 401
    assert client.post("/admin/login", data={"token": "wrong"}).status_code == 401


def test_an_operator_sees_the_list_and_a_timeline(client: FlaskClient) -> None:
    order = _order(client)
    listed = client.get("/admin/sagas", headers=ADMIN)
    assert listed.status_code == 200 and listed.mimetype == "text/html"
    assert order["saga_id"] in listed.get_data(as_text=True)

    signed_in = client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert signed_in.status_code == 302
    page = client.get(f"/admin/sagas/{order['saga_id']}").get_data(as_text=True)
    assert "reserve_stock" in page and "RUNNING" in page
    assert "Retry" not in page  # only a FAILED saga offers it
    assert client.get("/admin/sagas/sga_01M88S610N83SY6VPQ23SAANM8").status_code == 404
    assert client.get("/admin/sagas?status=FAILED").status_code == 200


def test_retry_needs_the_csrf_token(client: FlaskClient) -> None:
    order = _order(client)
    client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert client.post(f"/admin/sagas/{order['saga_id']}/retry", data={}).status_code == 403
    client.get(f"/admin/sagas/{order['saga_id']}")
    with client.session_transaction(f"/admin/sagas/{order['saga_id']}") as session:
        csrf = session["csrf"]
    answer = client.post(f"/admin/sagas/{order['saga_id']}/retry", data={"csrf": csrf}, follow_redirects=True)
    assert answer.status_code == 200 and "only a FAILED saga can be retried" in answer.get_data(as_text=True)


def test_the_failed_come_first_with_their_last_error(app: Flask, client: FlaskClient) -> None:
    failed, newer = _order(client), _order(client)
    with runtime(app).db.uow() as uow:
        saga = uow.session.get(Saga, failed["saga_id"])
        assert saga is not None
        saga.status = "FAILED"
        saga.steps[0].error = "ConnectionError: the inventory service went away"
        saga.updated_at = utcnow() - timedelta(hours=1)  # moved before the other one
        uow.commit()
    page = client.get("/admin/sagas", headers=ADMIN).get_data(as_text=True)
    assert page.index(failed["saga_id"]) < page.index(newer["saga_id"])
    assert "ConnectionError: the inventory service went away" in page


def test_a_saga_shows_its_order_its_payment_and_where_its_tasks_are(pg_url: str, redis_url: str) -> None:
    app = create_app(settings_for(pg_url, redis_url, ORDERSAGA_FLOWER_URL="https://flower.shop.example/"))
    runtime(app).db.after_commit = None  # as the app fixture: nothing sent to the shared broker
    try:
        client = app.test_client()
        order = _order(client)
        page = client.get(f"/admin/sagas/{order['saga_id']}", headers=ADMIN).get_data(as_text=True)
        with runtime(app).db.uow() as uow:
            saga = uow.session.get(Saga, order["saga_id"])
            assert saga is not None
            order_id = saga.subject_id
    finally:
        runtime(app).db.dispose()
        truncate_all(pg_url)
    assert order_id in page and "PENDING" in page
    assert "none yet" in page  # no payment before create_payment has run
    assert f'href="https://flower.shop.example/api/tasks?search=kwargs:{order["saga_id"]}"' in page
