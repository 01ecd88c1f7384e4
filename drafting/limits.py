"""At most ``endpoint.concurrency`` model calls in flight per endpoint, over all workers.

With Redis (``REDIS_URL``), a slot is a member of a sorted set scored by its expiry, taken
and freed atomically by a Lua script: a worker killed while holding a slot loses it when the
slot expires. Without Redis every task runs in this process, and a semaphore is enough.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections.abc import Iterator
from functools import cache

from django.conf import settings

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[3] - ARGV[1]) + 60)
  return 1
end
return 0
"""


class NoSlot(Exception):
    """Every slot of the endpoint stayed taken for the whole wait."""


@cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


@cache
def _take_script(url: str):
    """The slot-taking script, registered once per process (its SHA computed once): each take
    is then one EVALSHA (EVAL only after Redis lost its script cache)."""
    return _redis(url).register_script(_TAKE)


_local_lock = threading.Lock()
_local: dict[tuple[int | str, int], threading.BoundedSemaphore] = {}


def _local_semaphore(endpoint_pk: int | str, limit: int) -> threading.BoundedSemaphore:
    """One semaphore per endpoint and limit: a changed concurrency applies without a restart."""
    with _local_lock:
        semaphore = _local.get((endpoint_pk, limit))
        if semaphore is None:
            semaphore = _local[endpoint_pk, limit] = threading.BoundedSemaphore(limit)
        return semaphore


def slot_key(endpoint_pk: int | str) -> str:
    """An endpoint's slots by its pk; another tool's by its own name (``labeller-3``)."""
    return f"cxr:model-slots:{endpoint_pk}"


@contextlib.contextmanager
def model_slot(endpoint_pk: int | str, *, limit: int, hold_s: float,
               wait_s: float) -> Iterator[None]:
    """Hold one of ``limit`` slots of the endpoint for at most ``hold_s`` seconds.

    Raises NoSlot when none frees up within ``wait_s``.
    """
    url = settings.REDIS_URL
    if not url:
        semaphore = _local_semaphore(endpoint_pk, limit)
        if not semaphore.acquire(timeout=wait_s):
            raise NoSlot(f"all {limit} model slots stayed busy for {wait_s:g} s")
        try:
            yield
        finally:
            semaphore.release()
        return
    client, key, token = _redis(url), slot_key(endpoint_pk), uuid.uuid4().hex
    take = _take_script(url)
    deadline = time.monotonic() + wait_s
    pause = 0.01
    while not take(keys=[key], args=[time.time(), limit, time.time() + hold_s, token]):
        if time.monotonic() >= deadline:
            raise NoSlot(f"all {limit} model slots stayed busy for {wait_s:g} s")
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 1.5, 0.2)
    try:
        yield
    finally:
        client.zrem(key, token)
