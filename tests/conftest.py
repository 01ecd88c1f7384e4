"""Test-suite fixtures: real PostgreSQL and Redis started by the suite, and common factories.

Every database test runs against a real PostgreSQL server started here (never SQLite, never a
mock); ``redis_url`` gives a real Redis server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from django.db import connections

from tests.support import servers
from tests.support.fake_openai import FakeOpenAI, fake_openai_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.PostgresServer]:
    with servers.postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres: servers.PostgresServer) -> None:
    """Point Django's default database at the real PostgreSQL server before the test DB exists."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    conn_max_age = 0
    db.clear()
    db.update(postgres.django_settings())
    db.update({"CONN_MAX_AGE": conn_max_age, "TEST": {"NAME": "test_cxr"}})
    # A connection object made before this point would still be a SQLite one: drop it.
    with contextlib.suppress(AttributeError, KeyError):
        del connections["default"]
    connections.settings = connections.configure_settings(settings.DATABASES)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with servers.redis_server() as url:
        yield url


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """PBKDF2 at production strength costs ~0.3 s per user; tests make hundreds of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _two_factor_off(settings) -> None:
    """Most tests sign coordinators in with ``force_login`` and no authenticator: the
    two-factor gate is tested on its own (tests/test_two_factor.py turns it back on)."""
    settings.TWO_FACTOR_ENFORCED = False


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings) -> None:
    """Each test writes its files under its own temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(scope="session", autouse=True)
def _no_proxy() -> None:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def fake_model() -> Iterator[FakeOpenAI]:
    """A real OpenAI-compatible HTTP server on loopback (see ``tests.support.fake_openai``)."""
    with fake_openai_server() as server:
        yield server
