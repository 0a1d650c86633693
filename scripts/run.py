"""`make run`: the whole service on the embedded defaults, with demo data.

Makes sure a Redis answers (the configured one, else the default port, else a private
redis-server under var/), migrates the SQLite default, seeds demo data, and runs the API,
a worker, beat and Flower together under honcho. Ctrl-C stops all of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from scripts import servers

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"


def _configured_redis() -> str | None:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    return os.environ.get("REDIS_URL") or (broker if broker.startswith(("redis:", "rediss:")) else None)


def main() -> int:
    os.chdir(REPO)
    os.environ.setdefault("ORDERSAGA_ENV", "development")
    VAR.mkdir(exist_ok=True)

    redis = servers.ensure_redis(_configured_redis(), VAR / "redis")
    os.environ.setdefault("REDIS_URL", redis.url)
    os.environ.setdefault("CELERY_BROKER_URL", redis.url)
    metrics_dir = VAR / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counters of processes that no longer run
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    from app.config import load_settings_or_exit

    settings = load_settings_or_exit()
    api_bind = settings.public_url.split("://", 1)[1].split("/", 1)[0]
    os.environ.setdefault("ORDERSAGA_API_BIND", api_bind)
    os.environ.setdefault("ORDERSAGA_FLOWER_PORT", "5555")

    bin_dir = Path(sys.executable).parent
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run([bin_dir / "alembic", "upgrade", "head"], check=True)

    from app.db import Database
    from app.seed import seed

    database = Database(settings.database_url)
    seeded = seed(database.uow)
    database.engine.dispose()
    # The demo token was just re-issued: forget the old one's cached hash (flash-sale path).
    import redis as redis_client

    from app.flash_gate import token_key

    redis_client.Redis.from_url(os.environ["REDIS_URL"]).delete(token_key(seeded.user_id))

    base = settings.public_url
    print(
        f"""
ordersaga is starting (Ctrl-C stops everything)
  API            {base}/api/v1/goods
  API docs       {base}/api/docs      (OpenAPI: {base}/api/openapi.json)
  Flower         http://127.0.0.1:{os.environ["ORDERSAGA_FLOWER_PORT"]}/
  Metrics        {base}/metrics
  Redis          {servers.redact(redis.url)}{" (private, under var/redis)" if redis.private else ""}
  Database       {settings.database_url}
  Operator token {settings.admin_token}
  Demo user      {seeded.user_id}
  Demo token     {seeded.user_token}
  Demo coupon    {seeded.coupon_id} (20.00 off orders of 100.00 or more)

  curl -s {base}/api/v1/goods
  curl -s -H 'Authorization: Bearer {seeded.user_token}' {base}/api/v1/me
""",
        flush=True,
    )
    honcho = subprocess.Popen([bin_dir / "honcho", "start", "-f", str(REPO / "Procfile")])
    try:
        while True:
            try:
                return honcho.wait()
            except KeyboardInterrupt:
                continue  # honcho got the same Ctrl-C and is stopping its processes: let it finish
    finally:
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
