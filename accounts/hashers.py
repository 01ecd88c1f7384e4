"""Password hashing that yields the processor to the readers' requests.

A sign-in or an electronic signature checks a password with PBKDF2 at Django's strength
(1,000,000 rounds): about a second of one core here. On a two-core server a signature used to
take that core from every heartbeat, autosave and page in flight (the load test's p95 rose with
each one). The hash is the same, computed in a small pool of threads whose scheduling priority
is lowered (``nice`` 10, per thread on Linux): PBKDF2 releases Python's interpreter lock, so
the request threads keep running, and the hash takes what the processor has left. A sign-in
may wait a little longer when the server is busy; nobody's typing does.

The stored format is Django's own ``pbkdf2_sha256``: hashes made before verify here, and
Django's hasher verifies these.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth.hashers import PBKDF2PasswordHasher

NICENESS = 10
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lower_priority() -> None:
    """Lower this thread's priority (Linux: per thread; unprivileged may always lower)."""
    # No setpriority here (not Linux): the hash runs at normal priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


def hashing_pool() -> ThreadPoolExecutor:
    """The process's pool of low-priority hashing threads (made at the first hash, so in each
    gunicorn worker after its fork)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-hash",
                                       initializer=_lower_priority)
        return _pool


class BackgroundPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2-SHA256, computed in the low-priority pool."""

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        return hashing_pool().submit(super().encode, password, salt, iterations).result()
