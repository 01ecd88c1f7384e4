"""Tiny Celery tasks for tests/test_celery_redis.py, registered on the project's Celery app.

Workers only autodiscover ``<app>.tasks`` modules; the test worker loads this module with
``celery -A config worker -I tests.support.celery_tasks``.
"""

from __future__ import annotations

import os

from config.celery import app


@app.task
def add(x: int, y: int) -> dict:
    """Add two numbers; also say which process did it (the worker, not the test)."""
    return {"sum": x + y, "pid": os.getpid()}


@app.task
def db_backend_pid() -> int:
    """The PostgreSQL backend serving this worker's database connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]
