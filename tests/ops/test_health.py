"""The probes on the suite's real servers: PostgreSQL, a real Redis, a real Celery worker
process; a dead port and a server that never answers for the failures (bounded in time)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.support import redis_db
from tests.support.celery_helpers import celery_on_redis, celery_worker, wait_ready
from tests.support.servers import free_port

LIVE, READY = "/health/live/", "/health/ready/"
pytestmark = pytest.mark.django_db


def checks_of(response) -> dict[str, dict]:
    body = response.json()
    assert set(body) == {"status", "checks"}
    assert [c["name"] for c in body["checks"]] == ["database", "redis", "workers", "disk"]
    for check in body["checks"]:
        assert set(check) == {"name", "ok", "reason", "ms"}
        assert isinstance(check["ms"], float) and check["ms"] >= 0
    return {check["name"]: check for check in body["checks"]}


def outcome(checks: dict[str, dict]) -> dict[str, tuple[bool, str]]:
    return {name: (check["ok"], check["reason"]) for name, check in checks.items()}


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung Redis)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_live_answers_without_checking_anything(client, settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # down: not live's business
    response = client.get(LIVE)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies  # no session


def test_ready_without_redis_url_checks_the_database_and_disk(client, settings) -> None:
    settings.REDIS_URL = ""
    response = client.get(READY)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert outcome(checks_of(response)) == {
        "database": (True, "ok"), "redis": (True, "not configured"),
        "workers": (True, "not configured"), "disk": (True, "ok"),
    }
    assert client.head(READY).status_code == 200
    assert client.post(READY).status_code == 405


def test_ready_with_redis_and_a_real_worker(client, settings, redis_url: str,
                                            tmp_path: Path) -> None:
    url = redis_db(redis_url, 5)
    settings.REDIS_URL = url
    log = tmp_path / "worker.log"
    with celery_on_redis(url), celery_worker(redis_url=url, queue="ops-ready", log=log) as proc:
        wait_ready(proc, log)
        deadline = time.monotonic() + 20  # the worker's control channel may lag "ready." a bit
        while True:
            response = client.get(READY)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.json()
        checks = checks_of(response)
        assert outcome(checks) == {
            "database": (True, "ok"), "redis": (True, "ok"), "workers": (True, "ok"),
            "disk": (True, "ok"),
        }
        # The first answer ends the wait: no healthy readiness pays the ping's timeout.
        assert checks["workers"]["ms"] < 1000 * settings.HEALTH_TIMEOUT_S


def test_redis_up_but_no_worker_fails_unless_workers_are_left_out(client, settings,
                                                                  redis_url: str) -> None:
    url = redis_db(redis_url, 6)
    settings.REDIS_URL = url
    settings.HEALTH_TIMEOUT_S = 0.5
    with celery_on_redis(url):
        start = time.monotonic()
        response = client.get(READY)
        assert time.monotonic() - start < 5
        assert response.status_code == 503
        assert response.json()["status"] == "fail"
        assert outcome(checks_of(response)) == {
            "database": (True, "ok"), "redis": (True, "ok"),
            "workers": (False, "no worker answered"), "disk": (True, "ok"),
        }
        # The web container's own health check: the worker container is not its business.
        response = client.get(READY, {"workers": "0"})
        assert response.status_code == 200
        assert outcome(checks_of(response))["workers"] == (True, "skipped")


def test_redis_on_a_dead_port_fails_fast_and_says_nothing_of_it(client, settings) -> None:
    port = free_port()
    settings.REDIS_URL = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    for query in ({}, {"workers": "0"}):
        start = time.monotonic()
        response = client.get(READY, query)
        assert time.monotonic() - start < 3
        assert response.status_code == 503
        got = outcome(checks_of(response))
        assert got["database"] == (True, "ok") and got["disk"] == (True, "ok")
        assert got["redis"] == (False, "ConnectionError")
        assert got["workers"] == ((True, "skipped") if query else (False, "broker unreachable"))
        text = response.content.decode()
        assert str(port) not in text and "hunter2" not in text and "127.0.0.1" not in text
        assert "Traceback" not in text


def test_a_redis_that_never_answers_fails_within_the_timeout(client, settings) -> None:
    settings.HEALTH_TIMEOUT_S = 0.5
    with silent_server() as port:
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        start = time.monotonic()
        response = client.get(READY)
        elapsed = time.monotonic() - start
    assert response.status_code == 503
    checks = checks_of(response)
    assert outcome(checks)["redis"] == (False, "TimeoutError")
    assert elapsed < 2.5  # one bounded wait, not kombu's or redis-py's retries
    assert 400 <= checks["redis"]["ms"] < 2000


def test_disk_fails_under_the_minimum(client, settings) -> None:
    settings.REDIS_URL = ""
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(settings.MEDIA_ROOT).free / 1024 / 1024
    settings.HEALTH_MIN_FREE_DISK_MB = free_mb * 2 + 1024
    response = client.get(READY)
    assert response.status_code == 503
    assert outcome(checks_of(response)) == {
        "database": (True, "ok"), "redis": (True, "not configured"),
        "workers": (True, "not configured"), "disk": (False, "free space below the minimum"),
    }
    assert str(int(free_mb)) not in response.content.decode()
    settings.HEALTH_MIN_FREE_DISK_MB = free_mb / 2
    assert client.get(READY).status_code == 200


def test_media_root_not_made_yet_is_measured_on_its_parent(client, settings, tmp_path) -> None:
    settings.REDIS_URL = ""
    settings.MEDIA_ROOT = tmp_path / "not" / "yet" / "media"
    assert client.get(READY).status_code == 200


@pytest.mark.parametrize("path", [LIVE, READY])
def test_probes_skip_the_host_check_https_redirect_and_sign_in(client, settings,
                                                                path: str) -> None:
    """A container's health check calls http://127.0.0.1:8000 and Prometheus web:8000: neither
    need be an allowed host, and plain HTTP is not redirected there."""
    settings.REDIS_URL = ""
    settings.ALLOWED_HOSTS = ["trial.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.TWO_FACTOR_ENFORCED = True
    for host in ("127.0.0.1:8000", "web:8000"):
        response = client.get(path, HTTP_HOST=host)
        assert response.status_code == 200, (host, response.status_code)
        assert json.loads(response.content)["status"] == "ok"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in response
        assert not response.cookies
    # Everything else keeps both: another host is refused, plain HTTP is redirected.
    assert client.get("/accounts/login/", HTTP_HOST="web:8000").status_code == 400
    redirect = client.get("/accounts/login/", HTTP_HOST="trial.example.org")
    assert redirect.status_code == 301
    assert redirect["Location"].startswith("https://")
    # Only the exact paths: a look-alike goes through the whole stack.
    assert client.get("/health/ready/x", HTTP_HOST="web:8000").status_code == 400
