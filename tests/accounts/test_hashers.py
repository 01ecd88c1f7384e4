"""Password hashing in low-priority threads (``accounts.hashers``): the same hashes as Django's
PBKDF2, verified both ways, computed in a thread whose scheduling priority is lowered."""

from __future__ import annotations

import os
import threading

import pytest
from django.contrib.auth.hashers import (
    PBKDF2PasswordHasher,
    check_password,
    get_hasher,
    make_password,
)

from accounts.hashers import NICENESS, BackgroundPBKDF2PasswordHasher, hashing_pool

BACKGROUND = "accounts.hashers.BackgroundPBKDF2PasswordHasher"


def test_the_same_hash_as_djangos_pbkdf2() -> None:
    ours, django = BackgroundPBKDF2PasswordHasher(), PBKDF2PasswordHasher()
    assert ours.algorithm == django.algorithm == "pbkdf2_sha256"
    assert ours.encode("ochre-kestrel", "saltsaltsalt", 1000) == django.encode(
        "ochre-kestrel", "saltsaltsalt", 1000)
    assert ours.iterations == django.iterations >= 1_000_000  # Django's strength, unchanged


def test_hashes_verify_both_ways(settings) -> None:
    settings.PASSWORD_HASHERS = [BACKGROUND, "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    made_by_django = PBKDF2PasswordHasher().encode("ochre-kestrel", "salt1", 1000)
    assert check_password("ochre-kestrel", made_by_django)
    assert not check_password("wrong", made_by_django)
    made_here = make_password("ochre-kestrel")
    assert get_hasher("default").algorithm == "pbkdf2_sha256"
    assert PBKDF2PasswordHasher().verify("ochre-kestrel", made_here)


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread priority here")
def test_the_hash_runs_in_a_lower_priority_thread() -> None:
    def priority() -> tuple[str, int]:
        return (threading.current_thread().name,
                os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    name, niceness = hashing_pool().submit(priority).result()
    assert name.startswith("password-hash")
    assert niceness == min(19, caller + NICENESS)
    # The caller's own priority is untouched.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller


def test_production_settings_hash_with_it() -> None:
    """config/settings.py puts it first (the tests' conftest swaps in MD5 for speed)."""
    from config import settings as production

    assert production.PASSWORD_HASHERS[0] == BACKGROUND
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in production.PASSWORD_HASHERS
