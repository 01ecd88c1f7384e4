"""Celery on a real Redis: a real worker process takes tasks from the queue and returns results.

Without REDIS_URL the settings make tasks run in-process (eagerly); with it they go to Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app
from tests.celery_tasks import add

ROOT = Path(__file__).resolve().parent.parent
WORKER_START_TIMEOUT = 60  # s; a cold worker (Django setup, imports) takes a few seconds


def _reset_connections() -> None:
    """Forget the broker pool and result backend Celery built from the previous settings.

    Celery caches both on the app at first use; without this reset a changed broker_url or
    result_backend would not take effect (private attributes: Celery has no public API for it).
    """
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@contextlib.contextmanager
def celery_on_redis(url: str) -> Iterator[None]:
    """Point the project's Celery app at ``url`` (broker and results), restore afterwards."""
    keys = ("broker_url", "result_backend", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    _reset_connections()
    try:
        yield
    finally:
        app.conf.update(saved)
        _reset_connections()


@contextlib.contextmanager
def celery_worker(*, redis_url: str, queue: str, log: Path) -> Iterator[subprocess.Popen]:
    """A real ``celery -A config worker`` process on ``queue``, stopped with a warm shutdown."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REDIS_URL": redis_url,  # config/settings.py turns it into the broker and result backend
        "DEMO_MODE": "1",
        "DATA_DIR": str(log.parent / "worker-data"),  # nothing written into the checkout
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "-I", "tests.celery_tasks", "-Q", queue, "-n", f"{queue}@%h",
                "--pool=solo", "--concurrency=1", "-l", "info",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
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


def _wait_for(result, *, proc: subprocess.Popen, log: Path, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result.ready():
            return result.get(timeout=1)
        if proc.poll() is not None:
            pytest.fail(
                f"the worker exited with code {proc.returncode}:\n{log.read_text(errors='replace')}"
            )
        time.sleep(0.1)
    pytest.fail(f"no result within {timeout} s; worker log:\n{log.read_text(errors='replace')}")


def test_a_real_worker_runs_tasks_from_redis(redis_url: str, tmp_path: Path) -> None:
    queue = f"test-{uuid.uuid4().hex[:12]}"  # own queue: other tests' messages are not ours
    log = tmp_path / "worker.log"
    with celery_on_redis(redis_url):
        # Queued before any worker exists: the message waits in Redis.
        first = add.apply_async((2, 3), queue=queue)
        assert first.state == "PENDING"
        with celery_worker(redis_url=redis_url, queue=queue, log=log) as worker:
            assert _wait_for(first, proc=worker, log=log, timeout=WORKER_START_TIMEOUT) == {
                "sum": 5, "pid": worker.pid,
            }
            second = add.apply_async((40, 2), queue=queue)
            assert _wait_for(second, proc=worker, log=log, timeout=30)["sum"] == 42
            assert second.state == "SUCCESS"
        assert worker.returncode == 0, log.read_text(errors="replace")
    assert app.conf.task_always_eager == settings.CELERY_TASK_ALWAYS_EAGER  # restored


def _celery_settings(env_extra: dict[str, str], tmp_path: Path) -> dict:
    """Import the settings and the Celery app in a fresh interpreter with a chosen environment."""
    code = (
        "import json\n"
        "from django.conf import settings\n"
        "from config.celery import app\n"
        "from tests.celery_tasks import add\n"
        "out = {k: getattr(settings, k) for k in ('CELERY_TASK_ALWAYS_EAGER',"
        " 'CELERY_BROKER_URL', 'CELERY_RESULT_BACKEND')}\n"
        "out['app_eager'] = app.conf.task_always_eager\n"
        "out['app_broker'] = app.conf.broker_url\n"
        "if out['app_eager']:\n"
        "    out['delay'] = add.delay(2, 3).get()['sum']\n"
        "print(json.dumps(out))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "a-test-secret-key",  # production-like: no DEMO_MODE, no DEBUG
        "DATA_DIR": str(tmp_path / "data"),
        **env_extra,
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_redis_url_tasks_run_in_process(tmp_path: Path) -> None:
    got = _celery_settings({}, tmp_path)
    assert got == {
        "CELERY_TASK_ALWAYS_EAGER": True,
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": None,
        "app_eager": True,
        "app_broker": "memory://",
        "delay": 5,
    }


def test_with_redis_url_tasks_go_to_the_broker(tmp_path: Path) -> None:
    url = "redis://redis.example:6379/0"
    got = _celery_settings({"REDIS_URL": url}, tmp_path)
    assert got == {
        "CELERY_TASK_ALWAYS_EAGER": False,
        "CELERY_BROKER_URL": url,
        "CELERY_RESULT_BACKEND": url,
        "app_eager": False,
        "app_broker": url,
    }
