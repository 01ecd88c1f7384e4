"""Sessions from Redis, kept in the database (``accounts.sessions``, used with ``REDIS_URL``):
a signed-in request reads no session row; a flushed or unreachable Redis signs nobody out and
breaks no request; signing out ends the session in both places."""

from __future__ import annotations

import pytest
import redis
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client

from tests.ops.support import redis_db
from tests.support import servers
from tests.support.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
HOME = "/"


def use_cache(settings, url: str) -> None:
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
        "KEY_PREFIX": "cxr-cache",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }}
    settings.SESSION_ENGINE = "accounts.sessions"


def session_queries(client: Client, path: str) -> tuple[int, int]:
    """(status, statements that touched django_session) for one GET."""
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        status = client.get(path).status_code
    return status, sum("django_session" in sql for sql in seen)


def sign_in(client: Client, user) -> None:
    """Through the sign-in form, as a person does (the password check needs the request)."""
    answer = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 302, answer.content


def signed_in(client: Client) -> bool:
    return client.get(HOME).wsgi_request.user.is_authenticated


@pytest.fixture
def cache_url(settings, redis_url: str) -> str:
    url = redis_db(redis_url, 7)
    use_cache(settings, url)
    return url


def test_a_signed_in_request_reads_its_session_from_redis_not_the_database(
        cache_url: str) -> None:
    user = UserFactory()
    client = Client()
    sign_in(client, user)
    assert Session.objects.count() == 1  # kept in the database too
    client.get(HOME)
    status, queries = session_queries(client, HOME)
    assert (status, queries) == (200, 0)
    keys = redis.Redis.from_url(cache_url).keys("cxr-cache:*sessions*")
    assert len(keys) == 1


def test_a_flushed_redis_signs_nobody_out(cache_url: str) -> None:
    user = UserFactory()
    client = Client()
    sign_in(client, user)
    client.get(HOME)  # the first request stamps the idle clock (a write)
    redis.Redis.from_url(cache_url).flushdb()  # a restarted Redis without its data
    status, queries = session_queries(client, HOME)
    assert status == 200 and queries == 1  # read back from the database ...
    assert signed_in(client)
    assert session_queries(client, HOME)[1] == 0  # ... and cached again


def test_signing_out_ends_the_session_in_redis_and_the_database(cache_url: str) -> None:
    user = UserFactory()
    client = Client()
    sign_in(client, user)
    old_cookie = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=old_cookie).exists()
    assert redis.Redis.from_url(cache_url).keys("cxr-cache:*sessions*") == []
    replay = Client()
    replay.cookies["sessionid"] = old_cookie
    assert not signed_in(replay)


def test_an_unreachable_redis_breaks_no_request(settings) -> None:
    use_cache(settings, f"redis://127.0.0.1:{servers.free_port()}/0")  # nothing listens
    user = UserFactory()
    client = Client()
    sign_in(client, user)
    assert signed_in(client)
    status, queries = session_queries(client, HOME)
    assert status == 200 and queries >= 1  # the database answered
    key = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    assert not signed_in(client)


def test_production_settings_use_this_store_only_with_redis() -> None:
    """config/settings.py: REDIS_URL set -> Redis cache and this store; unset (the demo, most
    tests) -> Django's database sessions."""
    import subprocess
    import sys

    code = ("import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
            "'config.settings'); from django.conf import settings as s; "
            "print(s.SESSION_ENGINE, s.CACHES['default']['BACKEND'])")
    outputs = {}
    for redis_value in ("", "redis://127.0.0.1:6399/0"):
        env = {"PATH": "/usr/bin:/bin", "DEMO_MODE": "1", "REDIS_URL": redis_value}
        outputs[redis_value] = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True,
            check=True).stdout.split()
    assert outputs[""] == ["django.contrib.sessions.backends.db",
                           "django.core.cache.backends.locmem.LocMemCache"]
    assert outputs["redis://127.0.0.1:6399/0"] == [
        "accounts.sessions", "django.core.cache.backends.redis.RedisCache"]
