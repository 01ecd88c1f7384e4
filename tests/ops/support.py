"""Helpers of the ops tests."""

from __future__ import annotations

import redis


def redis_db(url: str, db: int) -> str:
    """The same Redis server, another database, emptied: no other test's queues or workers."""
    other = url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(other)
    client.flushdb()
    client.close()
    return other
