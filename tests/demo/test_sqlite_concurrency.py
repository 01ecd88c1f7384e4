"""The embedded default (SQLite) answers concurrent writers instead of failing.

Hole 13 of the security audit: concurrent rating submits on the SQLite demo returned 500
"database is locked" (a deferred transaction that read first could not upgrade its lock).
Eight threads that each read and then write in 15 transactions all get through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import os, threading
import django
django.setup()
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
call_command("migrate", verbosity=0)
from trial.models import Site, Trial
trial = Trial.objects.create(name="T", slug="t")
errors = []
def work(n):
    try:
        for i in range(15):
            with transaction.atomic():
                Trial.objects.get(pk=trial.pk)  # a read, then a write: the lock upgrade
                Site.objects.create(trial_id=trial.pk, code=f"S{n}x{i}", name="x")
    except OperationalError as exc:
        errors.append(str(exc))
    finally:
        connection.close()
threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(errors), Site.objects.count(), errors[:1])
"""


def test_concurrent_writers_on_sqlite_all_succeed(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEMO_MODE": "1",
           "DATA_DIR": str(tmp_path)}
    for name in ("DATABASE_URL", "REDIS_URL", "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    errors, sites, first = done.stdout.strip().split(" ", 2)
    assert (int(errors), int(sites)) == (0, 120), first
