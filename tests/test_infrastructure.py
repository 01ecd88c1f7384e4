"""The suite runs on the real servers it starts, not on SQLite or mocks."""

import pytest
import redis
from django.db import connection


@pytest.mark.django_db
def test_database_is_a_real_postgresql_server() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


def test_redis_is_a_real_server(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("probe", "1")
    assert client.get("probe") == b"1"
    assert "redis_version" in client.info("server")
