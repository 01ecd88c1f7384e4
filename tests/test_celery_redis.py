"""Celery on a real Redis: a real worker process takes tasks from the queue and returns results.

Without REDIS_URL the settings make tasks run in-process (eagerly); with it they go to Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app
from tests.support.celery_helpers import ROOT, WORKER_START_TIMEOUT, celery_on_redis, celery_worker
from tests.support.celery_tasks import add


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
        "from tests.support.celery_tasks import add\n"
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
