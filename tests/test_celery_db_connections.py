"""A real worker keeps its database connection between tasks, and replaces a broken one.

Celery's Django fixup would close it around every task (a new PostgreSQL connection per AI
draft); settings.CELERY_DB_REUSE_MAX and config/celery.py keep it as a web server would.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg

from tests.support.celery_helpers import celery_on_redis, celery_worker, wait_ready
from tests.support.celery_tasks import db_backend_pid


def test_a_worker_reuses_its_database_connection_and_replaces_a_dead_one(
    redis_url: str, postgres, tmp_path: Path
) -> None:
    queue = f"db-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "worker.log"
    with celery_on_redis(redis_url), celery_worker(
        redis_url=redis_url, queue=queue, log=log, env={"DATABASE_URL": postgres.url}
    ) as worker:
        wait_ready(worker, log)
        pids = [db_backend_pid.apply_async(queue=queue).get(timeout=30) for _ in range(3)]
        assert len(set(pids)) == 1
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
        replaced = db_backend_pid.apply_async(queue=queue).get(timeout=30)
    assert replaced != pids[0]
