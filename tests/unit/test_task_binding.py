"""Each Flask app's tasks run against that app's own runtime. Celery shares a decorated task
with every app created afterwards unless told not to, and the first registration of a name
wins, so without care a second app in one process (a test, or a tool that builds two) would
run its tasks on the first app's database and Redis."""

from __future__ import annotations

from pathlib import Path

import fakeredis

from app import create_app
from app.extension import runtime
from tests.support.env import NO_BROKER, settings_for


def test_two_apps_in_one_process_each_run_tasks_on_their_own_runtime(tmp_path: Path) -> None:
    first, second = (create_app(settings_for(f"sqlite:///{tmp_path}/{n}.sqlite3", NO_BROKER)) for n in "ab")
    pings = [flask_app.extensions["celery"].tasks["ops.ping"] for flask_app in (first, second)]
    for flask_app in (first, second):
        runtime(flask_app)._redis = fakeredis.FakeRedis(decode_responses=True)
    pings[1].apply(args=("second",)).get()
    pings[0].apply(args=("first",)).get()
    assert runtime(second).redis.keys("ordersaga:ping:*") == ["ordersaga:ping:second"]
    assert runtime(first).redis.keys("ordersaga:ping:*") == ["ordersaga:ping:first"]
    for flask_app in (first, second):
        runtime(flask_app).db.dispose()
