"""gunicorn settings of the production ``web`` service (``gunicorn -c config/gunicorn.py``).

Threads, not one sync worker: a reader's page, its pixels, heartbeats and autosaves arrive
together, and a sync worker serves one request at a time (the load test's p95 of 24 s came
from that). ``WEB_CONCURRENCY`` processes x ``GUNICORN_THREADS`` threads; the defaults suit
a 2-core host (see the README's "Scale beyond one machine" for more).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # gunicorn runs this file alone
from config import env  # noqa: E402 - needs the path above

bind = env.text("GUNICORN_BIND")
# Processes: CPU-bound Python work holds one process's interpreter lock, so more than one; at
# most 2 x cores + 1.
workers = env.integer("WEB_CONCURRENCY", fallback=min(4, 2 * multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = env.integer("GUNICORN_THREADS")
timeout = env.integer("GUNICORN_TIMEOUT")
graceful_timeout = 30
keepalive = 5  # nginx keeps connections to us open (upstream keepalive)
# Heartbeat files in memory, not on the container's overlay filesystem (slow fsync stalls).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn >= 25 opens a control socket under $HOME by default; the app user's home (/app)
# is read-only to it, and nothing here uses gunicornc.
control_socket_disable = True
accesslog = "-"
# gunicorn's usual line, then the milliseconds the request took in Django (benchmarks/load.py
# reads it: the server's share of a response time).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)s'
errorlog = "-"


def post_worker_init(worker) -> None:
    """Every view imported and every template compiled before this process takes a request
    (ops/warmup.py: a cold process's first page took 1.2 s)."""
    from ops.warmup import warm_up

    warm_up()
