"""The readiness checks: the database, Redis, the Celery workers and free disk for MEDIA_ROOT.

Each check is bounded in time (``HEALTH_TIMEOUT_S`` for Redis and the workers' ping) and never
raises: a failure is reported by the class name of its error, never its message, which may
name hosts, users or paths. Without ``REDIS_URL`` (the demo: tasks run in-process) Redis and
the workers are "not configured", which is not a failure.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import redis
from django.conf import settings
from django.db import connections

OK = "ok"
NOT_CONFIGURED = "not configured"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One check's outcome as the readiness answer shows it."""

    name: str
    ok: bool
    reason: str
    ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(name: str, check: Callable[[], tuple[bool, str]]) -> Check:
    start = time.perf_counter()
    try:
        ok, reason = check()
    except Exception as exc:  # a probe answers, whatever broke; the class name only
        ok, reason = False, type(exc).__name__
    return Check(name, ok, reason, round((time.perf_counter() - start) * 1000, 1))


def redis_client() -> redis.Redis:
    """A client on ``REDIS_URL`` that gives up after ``HEALTH_TIMEOUT_S`` (connect and reply)."""
    timeout = settings.HEALTH_TIMEOUT_S
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout,
                                socket_timeout=timeout, retry_on_timeout=False)


def free_bytes(path: Path | str) -> int:
    """Free space for unprivileged writes on the disk holding ``path``, or its nearest existing
    parent (MEDIA_ROOT may not exist yet before the first upload)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_database() -> tuple[bool, str]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, OK


def check_redis() -> tuple[bool, str]:
    if not settings.REDIS_URL:
        return True, NOT_CONFIGURED
    client = redis_client()
    try:
        return bool(client.ping()), OK
    finally:
        client.close()


def check_workers() -> tuple[bool, str]:
    """At least one worker answers a ping within ``HEALTH_TIMEOUT_S`` (the first answer ends
    the wait: a healthy deployment does not pay the timeout)."""
    from config.celery import app

    timeout = settings.HEALTH_TIMEOUT_S
    # A connection of its own, connected once: a pooled one left broken by a Redis restart
    # would fail the next check, and kombu's default is to retry connecting for ever.
    options = {"max_retries": 1, "socket_connect_timeout": timeout}
    with app.connection_for_write(connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
        replies = app.control.ping(timeout=timeout, limit=1, connection=conn)
    return (True, OK) if replies else (False, "no worker answered")


def check_disk() -> tuple[bool, str]:
    minimum = settings.HEALTH_MIN_FREE_DISK_MB * 1024 * 1024
    if free_bytes(settings.MEDIA_ROOT) < minimum:
        return False, "free space below the minimum"
    return True, OK


def readiness(*, workers: bool = True) -> list[Check]:
    """Every check, in order. ``workers=False`` leaves the workers out (the web container's own
    health must not depend on the worker container)."""
    checks = [_timed("database", check_database)]
    redis_check = _timed("redis", check_redis)
    checks.append(redis_check)
    if not settings.REDIS_URL:
        checks.append(Check("workers", True, NOT_CONFIGURED, 0.0))
    elif not workers:
        checks.append(Check("workers", True, SKIPPED, 0.0))
    elif not redis_check.ok:
        # A ping through a broker that did not answer would only wait for kombu's retries.
        checks.append(Check("workers", False, "broker unreachable", 0.0))
    else:
        checks.append(_timed("workers", check_workers))
    checks.append(_timed("disk", check_disk))
    return checks
