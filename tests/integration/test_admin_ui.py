"""The operators' HTML view of sagas."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import ADMIN, bearer, create_goods, create_user
from tests.support.env import ADMIN_TOKEN


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
    with client.session_transaction() as session:
        csrf = session["csrf"]
    answer = client.post(f"/admin/sagas/{order['saga_id']}/retry", data={"csrf": csrf}, follow_redirects=True)
    assert answer.status_code == 200 and "only a FAILED saga can be retried" in answer.get_data(as_text=True)
