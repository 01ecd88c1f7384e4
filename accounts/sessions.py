"""Sessions read from Redis, kept in the database: what production uses when ``REDIS_URL`` is set.

Every request reads its session; from the database that is a query on every heartbeat and
autosave of every reader. Django's ``cached_db`` store reads it from the cache and writes both,
so a session survives a Redis restart (read back from the database on the next request). This
store also survives Redis being *down*: a failed cache read, write or delete is logged and the
database answers, so the site keeps working (drafts wait, as the readiness check says) instead
of failing every request. Signing out deletes the database row first, then the cached copy; a
copy kept by a Redis that could not be reached then lives at most ``CACHED_FOR`` seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore

logger = logging.getLogger("django.contrib.sessions")
CACHED_FOR = 300  # seconds; a reader's page asks every 10 s, so the cache still answers


class SessionStore(cached_db.SessionStore):
    def _cache_call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._cache, method)(*args)
        except Exception:  # Redis unreachable: the database answers instead
            logger.warning("Session cache %s failed; using the database.", method, exc_info=True)
            return None

    def load(self) -> dict:
        data = self._cache_call("get", self.cache_key)
        if data is not None:
            return data
        stored = self._get_session_from_db()
        if stored is None:
            return {}
        data = self.decode(stored.session_data)
        self._cache_call("set", self.cache_key, data,
                         min(CACHED_FOR, self.get_expiry_age(expiry=stored.expire_date)))
        return data

    def exists(self, session_key: str | None) -> bool:
        if session_key and self._cache_call("has_key", self.cache_key_prefix + session_key):
            return True
        return DatabaseStore.exists(self, session_key)

    def save(self, must_create: bool = False) -> None:
        DatabaseStore.save(self, must_create)
        self._cache_call("set", self.cache_key, self._session,
                         min(CACHED_FOR, self.get_expiry_age()))

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        DatabaseStore.delete(self, session_key)
        self._cache_call("delete", self.cache_key_prefix + session_key)
