"""Real Celery in tests: point the project's app at a real Redis, start real worker processes.

``celery_on_redis`` makes the test process publish to Redis (optionally routing every task
without an explicit queue to one queue of the test's own); ``celery_worker`` runs a real
``celery -A config worker`` subprocess on a queue, with the environment the test gives it
(database, media root, timeouts), and ``wait_ready`` waits until it consumes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import kombu.pools

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT = 60  # s; a cold worker (Django setup, imports) takes a few seconds


def _reset_connections() -> None:
    """Forget the broker pool, routing and result backend Celery built from earlier settings.

    Celery caches them on the app at first use; without this reset a changed broker_url,
    result_backend or task_default_queue would not take effect (private attributes: Celery has
    no public API for it). The ``amqp`` helper (queues, router, producer pool) is rebuilt from
    the current configuration on next use.
    """
    kombu.pools.reset()  # close the pooled connections and forget them (keyed by broker URL)
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
        del app.__dict__["amqp"]
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@contextlib.contextmanager
def celery_on_redis(url: str, *, queue: str | None = None) -> Iterator[None]:
    """Point the project's Celery app at ``url`` (broker and results), restore afterwards.

    With ``queue``, tasks sent without an explicit queue (``drafting.tasks.send``, ``.delay``) go to
    that queue, so only the test's own workers take them.
    """
    keys = ("broker_url", "result_backend", "task_always_eager", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    if queue:
        app.conf.task_default_queue = queue
    _reset_connections()
    try:
        yield
    finally:
        app.conf.update(saved)
        _reset_connections()


@contextlib.contextmanager
def celery_worker(
    *,
    redis_url: str,
    queue: str,
    log: Path,
    name: str | None = None,
    pool: str = "solo",
    concurrency: int = 1,
    env: Mapping[str, str] | None = None,
    include: str = "tests.support.celery_tasks",
) -> Iterator[subprocess.Popen]:
    """A real ``celery -A config worker`` process on ``queue``, stopped with a warm shutdown.

    ``env`` is added to the worker's environment (e.g. DATABASE_URL, MEDIA_ROOT,
    CELERY_VISIBILITY_TIMEOUT); ``name`` tells two workers on one queue apart.
    """
    worker_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REDIS_URL": redis_url,  # config/settings.py turns it into the broker and result backend
        "DEMO_MODE": "1",
        "DATA_DIR": str(log.parent / "worker-data"),  # nothing written into the checkout
        **(env or {}),
    }
    worker_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "-I", include, "-Q", queue, "-n", f"{name or queue}@%h",
                f"--pool={pool}", f"--concurrency={concurrency}", "-l", "info",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT, env=worker_env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # warm shutdown: finish the task, then exit
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def wait_ready(proc: subprocess.Popen, log: Path, *, timeout: float = WORKER_START_TIMEOUT) -> None:
    """Return once the worker logs that it is ready (it then consumes its queue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b" ready." in log.read_bytes():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with code {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')}")
        time.sleep(0.05)
    raise TimeoutError(f"the worker was not ready within {timeout} s:\n"
                       f"{log.read_text(errors='replace')}")
