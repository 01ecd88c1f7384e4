"""Load test of the whole site with locust: readers, raters, seniors and coordinators for
ten minutes, against a local production-like stack or the docker compose stack.

    .venv/bin/pip install -e '.[bench]'              # locust
    .venv/bin/python benchmarks/load.py              # 1x: 50 readers, 10 raters, 3 seniors,
                                                     #     2 coordinators, 10 minutes
    .venv/bin/python benchmarks/load.py --scale 3    # 3x the people
    .venv/bin/python benchmarks/load.py --duration 1m          # a smoke run
    .venv/bin/python benchmarks/load.py --target compose       # the running compose stack

What it does:

1. **Servers.** ``--target local`` (the default) starts its own PostgreSQL and Redis
   (``tests/support/servers.py``, the test suite's), migrates a fresh database, collects the
   static files, and starts gunicorn (``config.wsgi``, DEBUG off, HTTPS redirect and secure
   cookies off for plain HTTP on loopback; the compose stack's command line, workers from
   ``--gunicorn-args``), a Celery worker and beat, and Debian's nginx in front (the compose
   stack's ``docker/nginx.conf``: static files from nginx, the rest proxied; ``--no-nginx``
   to go straight to gunicorn). ``--target compose`` uses the stack ``docker-compose -f
   docker/compose.yaml`` runs now (``--compose-project``), on ``--host`` (default
   ``http://127.0.0.1:$HTTP_PORT``); the stack must serve plain HTTP for this
   (``SECURE_SSL_REDIRECT=0`` and ``SECURE_COOKIES=0`` in ``docker/.env``).
2. **The trial**, built inside the target with ``manage.py seed_load`` (directly, or with
   ``docker-compose exec web``): enough work for ``--duration`` at ``--scale``, accounts with a
   known password, the coordinators' authenticator keys.
3. **Locust**, headless: ``benchmarks/load/locustfile.py`` with one simulated person per
   account (``-u`` = the accounts, ramped up over ``--ramp`` seconds, ``-t`` = ``--duration``),
   its CSV stats in ``--out``. Meanwhile the load average, the CPU of each server's processes,
   gunicorn's workers and PostgreSQL's connections are sampled every 5 s.
4. **The check**: every reading's and review's stored text against the last text each
   simulated person saved (``manage.py seed_load --check``).
5. **The report**: per request type count, failures, p50/p95/p99/max (locust's CSV), the p95
   of every page and API request together (the password checks apart: sign-in and the
   senior's signature hash the password on purpose, PBKDF2 with Django's 1,000,000 rounds),
   the same after the ramp, the p95 per minute of each kind of request, the servers' CPU,
   workers and connections, the autosave check, the server logs' errors, and the verdict
   against the goals: 0 errors, p95 <= 150 ms, no lost autosave.

The client runs on the same machine as the servers: its CPU is in every number. Results and
logs stay in ``--out`` (default: a new folder under the system's temporary directory).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port, postgres_server, redis_server  # noqa: E402

LOCUSTFILE = ROOT / "benchmarks" / "load" / "locustfile.py"
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
GOAL_P95_MS = 150.0
# gunicorn's workers for the local target: the compose stack's (config/gunicorn.py with the
# compose file's WEB_CONCURRENCY=4 and GUNICORN_THREADS=4); ``--gunicorn-args "--workers 1"``
# measures a single sync worker, what the stack ran before it had a gunicorn configuration.
GUNICORN_DEFAULT = "--workers 4 --worker-class gthread --threads 4"
PASSWORD_MARK = "(password)"
SAMPLE_S = 5.0
PEOPLE = {"readers": 50, "raters": 10, "seniors": 3, "coordinators": 2}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=("local", "compose"), default="local")
    parser.add_argument("--scale", type=int, default=1,
                        help="Multiply the people: 1 = 50 readers, 10 raters, 3 seniors, "
                             "2 coordinators (1).")
    parser.add_argument("--duration", default="10m",
                        help="How long locust runs: 90s, 10m, 1h (10m).")
    parser.add_argument("--ramp", type=float, default=120.0,
                        help="Seconds over which the people sign in (120).")
    parser.add_argument("--out", help="Folder for the results (default: a new temporary one).")
    parser.add_argument("--gunicorn-args", default=GUNICORN_DEFAULT,
                        help=f"local: gunicorn's workers ({GUNICORN_DEFAULT!r}).")
    parser.add_argument("--no-nginx", action="store_true",
                        help="local: no nginx in front of gunicorn.")
    parser.add_argument("--compose-project",
                        help="compose: the project name (default: COMPOSE_PROJECT_NAME from "
                             "docker/.env).")
    parser.add_argument("--host", help="compose: the stack's URL (default: "
                                       "http://127.0.0.1:$HTTP_PORT from docker/.env, 8080).")
    return parser.parse_args()


def seconds_of(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", duration.strip())
    if not match:
        sys.exit(f"--duration: got {duration!r}, expected e.g. 90s, 10m, 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


# --- processes --------------------------------------------------------------------------------

@dataclass
class Process:
    """A server process of the local target, its log in the results folder."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen | None = None,
              log: Path | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5, trust_env=False).status_code < 500:
                return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    sys.exit(f"{url} did not answer within {timeout:.0f} s\n{tail}")


def nginx_conf(run: Path, *, port: int, upstream: int, static_root: Path) -> Path:
    """docker/nginx.conf's server on loopback, as a whole nginx configuration."""
    conf = run / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(f"""{user}worker_processes auto;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {run}/nginx-access.log;
    client_body_temp_path {run}/nginx-body;
    proxy_temp_path {run}/nginx-proxy;
    fastcgi_temp_path {run}/nginx-fastcgi;
    uwsgi_temp_path {run}/nginx-uwsgi;
    scgi_temp_path {run}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        client_max_body_size 2g;
        location /static/ {{
            alias {static_root}/;
            expires 7d;
            access_log off;
            add_header X-Content-Type-Options nosniff always;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
    }}
}}
""")
    return conf


class LocalTarget:
    """PostgreSQL, Redis, gunicorn, Celery worker and beat, nginx: all on loopback."""

    def __init__(self, args: argparse.Namespace, out: Path, stack: contextlib.ExitStack):
        self.args, self.out, self.stack = args, out, stack
        self.processes: list[Process] = []

    def start(self) -> None:
        run = self.out / "run"
        run.mkdir(parents=True, exist_ok=True)
        os.chmod(self.out, 0o755)
        print("Starting PostgreSQL and Redis ...", flush=True)
        self.pg = self.stack.enter_context(postgres_server())
        redis_url = self.stack.enter_context(redis_server())
        import psycopg

        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "cxr_load"')
        self.database_url = f"postgresql://{self.pg.user}@{self.pg.host}:{self.pg.port}/cxr_load"
        self.gunicorn_port = free_port()
        self.nginx_port = None if self.args.no_nginx else free_port()
        port = self.nginx_port or self.gunicorn_port
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.database_url, "REDIS_URL": redis_url,
            "DATA_DIR": str(run / "data"), "MEDIA_ROOT": str(run / "media"),
            "STATIC_ROOT": str(run / "static"),
            "SECRET_KEY": "load-test-only-secret-key-" + "x" * 30,
            "DEMO_MODE": "", "DEBUG": "",
            "SECURE_SSL_REDIRECT": "0", "SECURE_COOKIES": "0",  # plain HTTP on loopback
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
            "AXES_PROXY_COUNT": "0" if self.args.no_nginx else "1",
            "LOG_LEVEL": "WARNING", "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("PYTEST_VERSION", None)
        self.url = f"http://127.0.0.1:{port}"
        print("Migrating a fresh database, collecting the static files ...", flush=True)
        self.manage(["migrate", "--no-input", "-v", "0"])
        self.manage(["collectstatic", "--no-input", "-v", "0"])
        python = sys.executable
        gunicorn = [python, "-m", "gunicorn", "config.wsgi:application",
                    "--bind", f"127.0.0.1:{self.gunicorn_port}", "--timeout", "120",
                    "--access-logfile", str(self.out / "gunicorn-access.log"),
                    "--access-logformat", ACCESS_FORMAT, *self.args.gunicorn_args.split()]
        self.gunicorn = Process("gunicorn", gunicorn, self.env, self.out / "gunicorn.log")
        self.worker = Process("celery worker", [python, "-m", "celery", "-A", "config",
                                                "worker", "-l", "warning"],
                              self.env, self.out / "celery-worker.log")
        self.beat = Process("celery beat", [python, "-m", "celery", "-A", "config", "beat",
                                            "-l", "warning", "--schedule",
                                            str(run / "celerybeat-schedule")],
                            self.env, self.out / "celery-beat.log")
        self.processes = [self.gunicorn, self.worker, self.beat]
        if self.nginx_port:
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            if not Path(nginx).exists():
                sys.exit("nginx not found: apt-get install nginx-light (or --no-nginx)")
            conf = nginx_conf(run, port=self.nginx_port, upstream=self.gunicorn_port,
                              static_root=run / "static")
            self.nginx = Process("nginx", [nginx, "-c", str(conf), "-g", "daemon off;"],
                                 self.env, self.out / "nginx.log")
            self.processes.append(self.nginx)
        self.stack.callback(self.stop)

    def serve(self) -> None:
        nginx = ", nginx" if self.nginx_port else ""
        print(f"Starting gunicorn ({' '.join(self.gunicorn.argv[3:])}){nginx}, then the Celery "
              "worker and beat ...", flush=True)
        # One at a time: each imports the whole project (pandas, statsmodels, pydicom ...),
        # which on a busy 2-core machine takes a while.
        for process in self.processes:
            if process.name.startswith("celery"):
                continue
            process.start()
        wait_http(f"http://127.0.0.1:{self.gunicorn_port}/health/live/", timeout=300,
                  proc=self.gunicorn.proc, log=self.gunicorn.log)
        wait_http(self.url + "/accounts/login/", timeout=60)
        for process in (self.worker, self.beat):
            process.start()
        time.sleep(10)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def manage(self, argv: list[str], *, stdin: str | None = None,
               check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=self.env,
                                input=stdin, capture_output=True, text=True)
        if check and result.returncode != 0:
            sys.exit(f"manage.py {' '.join(argv)} failed:\n{result.stderr[-4000:]}")
        return result

    def seed(self, options: list[str]) -> dict:
        accounts = self.out / "accounts.json"
        result = self.manage(["seed_load", *options, "--throwaway", "--out", str(accounts)])
        (self.out / "seed.log").write_text(result.stderr)
        return json.loads(accounts.read_text())

    def check(self, expected: Path) -> tuple[dict, int]:
        result = self.manage(["seed_load", "--check", str(expected)], check=False)
        return json.loads(result.stdout), result.returncode

    # sampling ------------------------------------------------------------------------------

    def groups(self) -> dict[str, list[Any]]:
        """The processes of each server, now (psutil)."""
        import psutil

        found: dict[str, list[Any]] = defaultdict(list)
        for process in self.processes:
            if process.proc and process.proc.poll() is None:
                with contextlib.suppress(psutil.Error):
                    parent = psutil.Process(process.proc.pid)
                    found[process.name.split()[0]] += [parent, *parent.children(recursive=True)]
        for candidate in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(candidate.info.get("cmdline") or [])
            if candidate.info.get("name") == "postgres" and f"-p {self.pg.port}" in cmdline:
                with contextlib.suppress(psutil.Error):
                    found["postgres"] += [candidate, *candidate.children(recursive=True)]
        return found

    def workers(self) -> int:
        import psutil

        with contextlib.suppress(psutil.Error):
            return len(psutil.Process(self.gunicorn.proc.pid).children())
        return 0

    def connections(self) -> dict[str, int]:
        import psycopg

        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            rows = conn.execute("SELECT coalesce(state, ''), count(*) FROM pg_stat_activity "
                                "WHERE datname = 'cxr_load' GROUP BY 1").fetchall()
        return {state or "other": n for state, n in rows}

    def log_problems(self) -> dict[str, int]:
        def count(path: Path, pattern: str) -> int:
            if not path.exists():
                return 0
            return len(re.findall(pattern, path.read_text(errors="replace")))

        access = self.out / "gunicorn-access.log"
        self.access_log = access.read_text(errors="replace") if access.exists() else ""
        statuses = defaultdict(int)
        if access.exists():
            for line in access.read_text(errors="replace").splitlines():
                match = re.search(r'" (\d{3}) ', line)
                if match and match.group(1)[0] == "5":
                    statuses[match.group(1)] += 1
        nginx_statuses = defaultdict(int)
        nginx_access = self.out / "run" / "nginx-access.log"
        if nginx_access.exists():
            for line in nginx_access.read_text(errors="replace").splitlines():
                match = re.search(r'" (\d{3}) ', line)
                if match and (match.group(1)[0] == "5" or match.group(1) == "499"):
                    nginx_statuses[match.group(1)] += 1
        workers = re.search(r"--workers[ =](\d+)", self.args.gunicorn_args)
        return {
            "gunicorn WORKER TIMEOUT": count(self.gunicorn.log, r"WORKER TIMEOUT"),
            "gunicorn workers booted after the start": count(self.gunicorn.log, r"Booting worker")
            - (int(workers.group(1)) if workers else 1),
            "gunicorn tracebacks": count(self.gunicorn.log, r"Traceback"),
            "gunicorn 5xx answers": sum(statuses.values()),
            "nginx 5xx answers": sum(v for k, v in nginx_statuses.items() if k != "499"),
            "nginx 499 (client gone: the test's stop)": nginx_statuses.get("499", 0),
            "nginx errors": count(self.out / "run" / "nginx-error.log", r"\[(?:error|crit)\]"),
            "celery worker tracebacks": count(self.worker.log, r"Traceback"),
        }


class ComposeTarget:
    """The docker compose stack that runs now (``docker-compose -f docker/compose.yaml``)."""

    def __init__(self, args: argparse.Namespace, out: Path, stack: contextlib.ExitStack):
        self.args, self.out = args, out
        env_file = ROOT / "docker" / ".env"
        values = {}
        if env_file.exists():
            for line in env_file.read_text().splitlines():
                name, _, value = line.partition("=")
                if name.strip() and not name.startswith("#"):
                    values[name.strip()] = value.strip()
        self.project = args.compose_project or values.get("COMPOSE_PROJECT_NAME")
        self.url = (args.host or f"http://127.0.0.1:{values.get('HTTP_PORT', '8080')}").rstrip("/")
        compose = shutil.which("docker-compose")
        self.compose = [compose] if compose else ["docker", "compose"]
        self.compose += ["-f", str(COMPOSE_FILE)] + (["-p", self.project] if self.project else [])

    def start(self) -> None:
        running = subprocess.run(self.compose + ["ps", "-q", "web"], capture_output=True,
                                 text=True)
        if running.returncode != 0 or not running.stdout.strip():
            sys.exit("The compose stack is not running: start it (docker compose -f "
                     "docker/compose.yaml up -d, with SECURE_SSL_REDIRECT=0 and "
                     "SECURE_COOKIES=0 in docker/.env for plain HTTP) or give "
                     f"--compose-project.\n{running.stderr}")

    def serve(self) -> None:
        import httpx

        response = httpx.get(self.url + "/accounts/login/", timeout=10, trust_env=False)
        if response.status_code != 200:
            sys.exit(f"{self.url}/accounts/login/ answered {response.status_code} "
                     f"{response.headers.get('location', '')}: a plain-HTTP load test needs "
                     "SECURE_SSL_REDIRECT=0 and SECURE_COOKIES=0 in docker/.env.")
        if "secure" in response.headers.get("set-cookie", "").lower():
            sys.exit("The stack sends Secure cookies, which a plain-HTTP client does not send "
                     "back: set SECURE_COOKIES=0 in docker/.env for the load test.")

    def exec(self, service: str, argv: list[str], *, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self.compose + ["exec", "-T", service, *argv],
                                input=stdin, capture_output=True, text=True)
        if check and result.returncode != 0:
            sys.exit(f"{' '.join(argv)} in {service} failed:\n{result.stderr[-4000:]}")
        return result

    def seed(self, options: list[str]) -> dict:
        result = self.exec("web", ["python", "manage.py", "seed_load", *options,
                                    "--throwaway"])
        (self.out / "seed.log").write_text(result.stderr)
        (self.out / "accounts.json").write_text(result.stdout)
        return json.loads(result.stdout)

    def check(self, expected: Path) -> tuple[dict, int]:
        result = self.exec("web", ["python", "manage.py", "seed_load", "--check", "-"],
                           stdin=expected.read_text(), check=False)
        return json.loads(result.stdout), result.returncode

    def groups(self) -> dict[str, list[Any]]:
        return {}

    def docker_cpu(self) -> dict[str, float]:
        result = subprocess.run(["docker", "stats", "--no-stream", "--format",
                                 "{{.Name}} {{.CPUPerc}}"], capture_output=True, text=True)
        cpu: dict[str, float] = {}
        prefix = (self.project or "").replace(".", "")
        for line in result.stdout.splitlines():
            name, _, value = line.partition(" ")
            if prefix and not name.startswith(prefix):
                continue
            service = re.sub(rf"^{re.escape(prefix)}[-_]|[-_]\d+$", "", name)
            with contextlib.suppress(ValueError):
                cpu[service] = float(value.rstrip("%"))
        return cpu

    def workers(self) -> int:
        """gunicorn's workers in the web container (its processes but the master)."""
        script = ("import os\n"
                  "n = 0\n"
                  "for p in filter(str.isdigit, os.listdir('/proc')):\n"
                  "    try:\n"
                  "        n += p != str(os.getpid()) and b'gunicorn' in open(\n"
                  "            f'/proc/{p}/cmdline', 'rb').read()\n"
                  "    except OSError:\n"
                  "        pass\n"
                  "print(n - 1)")
        found = self.exec("web", ["python", "-c", script], check=False)
        with contextlib.suppress(ValueError):
            return int(found.stdout.strip())
        return 0

    def connections(self) -> dict[str, int]:
        result = self.exec("db", ["psql", "-U", "cxr", "-d", "cxr", "-tAF,", "-c",
                                  "SELECT coalesce(state, ''), count(*) FROM pg_stat_activity "
                                  "WHERE datname = 'cxr' GROUP BY 1"], check=False)
        rows = [line.split(",") for line in result.stdout.split() if "," in line]
        return {state or "other": int(n) for state, n in rows}

    def log_problems(self) -> dict[str, int]:
        result = subprocess.run(self.compose + ["logs", "--no-color", "web", "proxy"],
                                capture_output=True, text=True)
        logs = result.stdout + result.stderr
        (self.out / "compose-logs.txt").write_text(logs)
        self.access_log = subprocess.run(
            self.compose + ["logs", "--no-color", "--no-log-prefix", "web"],
            capture_output=True, text=True).stdout
        return {
            "gunicorn WORKER TIMEOUT": logs.count("WORKER TIMEOUT"),
            "gunicorn workers booted (the containers' whole logs)": logs.count("Booting worker"),
            "gunicorn tracebacks": logs.count("Traceback"),
            "5xx answers (web and proxy logs)": len(re.findall(r'" 5\d\d ', logs)),
        }


# --- sampling while locust runs -------------------------------------------------------------

@dataclass
class Sampler:
    target: Any
    locust_pid: int | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def cpu_seconds(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far of each process of each server (and of locust)."""
        import psutil

        groups = self.target.groups()
        if self.locust_pid:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(self.locust_pid)
                groups["locust"] = [parent, *parent.children(recursive=True)]
        used: dict[str, dict[int, float]] = {}
        for name, processes in groups.items():
            used[name] = {}
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    used[name][process.pid] = times.user + times.system
        return used

    def run(self) -> None:
        import psutil

        last, last_at = self.cpu_seconds(), time.monotonic()
        psutil.cpu_percent(None)
        started = time.time()
        while not self.stop_event.wait(SAMPLE_S):
            row: dict[str, Any] = {"t": round(time.time() - started, 1),
                                   "load1": os.getloadavg()[0],
                                   "cpu_total_%": psutil.cpu_percent(None)}
            now, now_at = self.cpu_seconds(), time.monotonic()
            for name, pids in now.items():
                before = last.get(name, {})
                # A process started since the last sample counts from zero.
                used = sum(total - before.get(pid, 0.0) for pid, total in pids.items())
                row[f"cpu_{name}_%"] = round(100 * used / (now_at - last_at), 1)
                row[f"cpu_{name}_s"] = round(used, 2)
            last, last_at = now, now_at
            if isinstance(self.target, ComposeTarget):
                for name, value in self.target.docker_cpu().items():
                    row[f"cpu_{name}_%"] = value
            with contextlib.suppress(Exception):
                row["gunicorn_workers"] = self.target.workers()
            with contextlib.suppress(Exception):
                connections = self.target.connections()
                row["db_connections"] = sum(connections.values())
                row["db_active"] = connections.get("active", 0)
            self.rows.append(row)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


# --- results ----------------------------------------------------------------------------------

def expected_saves(folder: Path) -> list[dict]:
    """Per reading or review: the last text acknowledged (or, before any save, the text the page
    opened with), and a save sent after it that was never answered (in flight when the test
    stopped)."""
    last: dict[tuple, dict] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # a line cut when the test stopped
                continue
            key = (event["kind"], event["user"], event["key"])
            entry = last.setdefault(key, {"acked": None, "pending": None})
            texts = {"findings": event["findings"], "impression": event["impression"]}
            # The text the page opened with is stored too: a reading whose first save was in
            # flight at the stop has that text, acknowledged by the page itself.
            if event["event"] in ("acked", "opened"):
                entry["acked"], entry["pending"] = texts, None
            else:
                entry["pending"] = texts
    out = []
    for (kind, user, key), entry in sorted(last.items()):
        where = {"position": key} if kind == "reading" else {"case": key}
        out.append({"kind": kind, "user": user, **where, **entry})
    return out


ACCESS_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)s'  # as compose
ACCESS_TIME = re.compile(r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")
ACCESS_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/[^"]*" (\d{3}) .* (\d+)$')


def gunicorn_times(log: str, *, since: float) -> list[float]:
    """Milliseconds gunicorn spent on each request from ``since`` (epoch seconds) on (the
    last field of its access log line, ``config/gunicorn.py``), the password checks and the
    containers' health probes apart: the time in Django, without the wait for a free thread,
    nginx or the client."""
    times = []
    for line in log.splitlines():
        match = ACCESS_LINE.search(line.rstrip())
        stamp = ACCESS_TIME.search(line)
        if not match or not stamp or datetime.strptime(
                stamp.group(1), "%d/%b/%Y:%H:%M:%S %z").timestamp() < since:
            continue
        method, path = match.group(1), match.group(2)
        if path.startswith("/health/") or path.endswith("/sign/") or (
                method == "POST" and path.startswith("/accounts/login/")):
            continue
        times.append(float(match.group(4)))
    return times


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def read_requests(out: Path) -> list[tuple[float, str, float, int, bool]]:
    rows = []
    for path in out.glob("requests-*.csv"):
        with path.open(newline="") as handle:
            for record in csv.reader(handle):
                if len(record) == 6:
                    with contextlib.suppress(ValueError):
                        rows.append((float(record[0]), record[1], float(record[2]),
                                     int(record[3]), record[5] == "1"))
    return sorted(rows)


def kind_of(name: str) -> str:
    if PASSWORD_MARK in name:
        return "password check"
    return name.split()[0]


def read_stats(out: Path) -> list[dict[str, str]]:
    path = out / "locust_stats.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_exceptions(out: Path) -> list[dict[str, str]]:
    path = out / "locust_exceptions.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def fmt(value: float | str) -> str:
    if isinstance(value, str):
        value = float(value) if value not in ("", "N/A") else float("nan")
    return "-" if math.isnan(value) else f"{value:.0f}"


def report(*, out: Path, args: argparse.Namespace, accounts: dict, started: float,
           load_before: tuple, load_after: tuple, ramp: float, check: dict, check_code: int,
           samples: list[dict], problems: dict[str, int], target_url: str,
           access_log: str) -> bool:
    stats = read_stats(out)
    requests = read_requests(out)
    exceptions = read_exceptions(out)
    lines: list[str] = []
    say = lines.append
    people = {k: len(accounts[k]) for k in ("readers", "raters", "seniors", "coordinators")}
    say(f"Load test: {people['readers']} readers, {people['raters']} raters, "
        f"{people['seniors']} seniors, {people['coordinators']} coordinators "
        f"(scale {args.scale}), {args.duration}, ramp {ramp:.0f} s, target {args.target} "
        f"({target_url})")
    say(f"{os.cpu_count()} CPUs; load average before {' '.join(f'{x:.2f}' for x in load_before)}"
        f", after {' '.join(f'{x:.2f}' for x in load_after)} (1, 5, 15 min)")
    if args.target == "local":
        say(f"gunicorn {args.gunicorn_args}{'' if args.no_nginx else ' behind nginx'}; "
            f"PostgreSQL, Redis, Celery worker and beat on this machine")
    say("")
    say(f"{'request':<36}{'count':>7}{'fail':>6}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>8}"
        f"{'avg kB':>9}   (ms, whole run, locust CSV)")
    for row in stats:
        if row["Name"] == "Aggregated":
            continue
        say(f"{row['Name'][:36]:<36}{row['Request Count']:>7}{row['Failure Count']:>6}"
            f"{fmt(row['50%']):>7}{fmt(row['95%']):>7}{fmt(row['99%']):>7}"
            f"{fmt(row['Max Response Time']):>8}"
            f"{float(row['Average Content Size'] or 0) / 1024:>9.1f}")
    aggregated = next((r for r in stats if r["Name"] == "Aggregated"), None)
    if aggregated:
        say(f"{'all requests (locust Aggregated)':<36}{aggregated['Request Count']:>7}"
            f"{aggregated['Failure Count']:>6}{fmt(aggregated['50%']):>7}"
            f"{fmt(aggregated['95%']):>7}{fmt(aggregated['99%']):>7}"
            f"{fmt(aggregated['Max Response Time']):>8}")
    say("")
    t0 = requests[0][0] if requests else started
    steady_from = t0 + ramp + 30
    checked = [r for r in requests if PASSWORD_MARK not in r[1]]
    steady = [r for r in checked if r[0] >= steady_from]
    whole_p95 = percentile([r[2] for r in checked], 95)
    steady_p95 = percentile([r[2] for r in steady], 95)
    say(f"Page and API requests without the password checks: {len(checked)} requests, "
        f"p50 {fmt(percentile([r[2] for r in checked], 50))} ms, p95 {fmt(whole_p95)} ms, "
        f"p99 {fmt(percentile([r[2] for r in checked], 99))} ms (whole run); after the ramp "
        f"(+30 s): {len(steady)} requests, p95 {fmt(steady_p95)} ms, p99 "
        f"{fmt(percentile([r[2] for r in steady], 99))} ms")
    by_name: dict[str, list[float]] = defaultdict(list)
    for r in steady:
        by_name[r[1]].append(r[2])
    worst_name, worst = max(((n, percentile(v, 95)) for n, v in by_name.items()),
                            key=lambda x: x[1], default=("-", float("nan")))
    say(f"Worst p95 of a request type after the ramp: {worst_name} {fmt(worst)} ms")
    server_times = gunicorn_times(access_log, since=t0 - 1)
    say(f"Time in gunicorn (its access log, the same requests): {len(server_times)} requests, "
        f"p50 {fmt(percentile(server_times, 50))} ms, p95 {fmt(percentile(server_times, 95))} "
        f"ms, p99 {fmt(percentile(server_times, 99))} ms; the rest of locust's time is the "
        "wait for a free gunicorn thread, nginx, the network and the client itself")
    say("")
    # Per minute, by kind (page, api, pixels, auth, password check).
    minutes = defaultdict(lambda: defaultdict(list))
    for when, name, ms, _, _ in requests:
        minutes[int((when - t0) // 60)][kind_of(name)].append(ms)
    kinds = sorted({kind_of(r[1]) for r in requests})
    say("p95 per minute (ms) by kind of request, and requests/s:")
    say(f"{'minute':>7}{'req/s':>7}" + "".join(f"{k[:14]:>16}" for k in kinds))
    for minute in sorted(minutes):
        total = sum(len(v) for v in minutes[minute].values())
        say(f"{minute + 1:>7}{total / 60:>7.1f}" + "".join(
            f"{fmt(percentile(minutes[minute][k], 95)):>16}" for k in kinds))
    say("")
    per_name = defaultdict(lambda: defaultdict(list))
    for when, name, ms, _, _ in requests:
        per_name[name][int((when - t0) // 60)].append(ms)
    with (out / "per-minute.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "minute", "count", "p50_ms", "p95_ms", "max_ms"])
        for name in sorted(per_name):
            for minute in sorted(per_name[name]):
                values = per_name[name][minute]
                writer.writerow([name, minute + 1, len(values), fmt(percentile(values, 50)),
                                 fmt(percentile(values, 95)), fmt(max(values))])
    if samples:
        keys = [k for k in samples[0] if k.startswith("cpu_") and k.endswith("%")] + [
            k for k in ("gunicorn_workers", "db_connections", "db_active") if k in samples[0]]
        seconds = defaultdict(float)
        for sample in samples:
            for key, value in sample.items():
                if key.startswith("cpu_") and key.endswith("_s"):
                    seconds[key[4:-2]] += value
        span = samples[-1]["t"] or 1.0
        if seconds:
            say("CPU seconds over the run (cores on average): " + ", ".join(
                f"{name} {value:.0f} ({value / span:.2f})" for name, value in seconds.items()))
        say("Servers, sampled every 5 s (mean / max over the run):")
        for key in ["load1", *keys]:
            values = [s[key] for s in samples if isinstance(s.get(key), int | float)]
            if values:
                say(f"  {key:<24} {statistics.fmean(values):>8.1f} / {max(values):.1f}")
        say("")
    say("Server logs: " + ", ".join(f"{k} {v}" for k, v in problems.items()))
    failures = int(aggregated["Failure Count"]) if aggregated else 0
    user_errors = sum(int(e.get("Occurrences", 1) or 1) for e in exceptions)
    if exceptions:
        say("Errors in the simulated users (locust_exceptions.csv):")
        for e in exceptions[:10]:
            say(f"  {e.get('Occurrences')} x {e.get('Message', '')[:150]}")
    lost = len(check.get("lost", []))
    say(f"Autosave check: {check.get('checked', 0)} readings and reviews; "
        f"{check.get('equal_to_last_acknowledged', 0)} stored texts equal the last one "
        f"acknowledged, {check.get('equal_to_save_in_flight_at_stop', 0)} the save in flight "
        f"when the test stopped, {lost} lost")
    for entry in check.get("lost", [])[:10]:
        say(f"  LOST: {entry}")
    say("")
    errors_ok = failures == 0 and user_errors == 0
    p95_ok = whole_p95 <= GOAL_P95_MS and all(
        float(r["95%"] or 0) <= GOAL_P95_MS for r in stats
        if r["Name"] != "Aggregated" and PASSWORD_MARK not in r["Name"])
    saves_ok = lost == 0 and check_code == 0 and check.get("checked", 0) > 0

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    saves_verdict = (verdict(saves_ok) if check.get("checked", 0)
                     else "NOT met (nothing was saved: nothing to check)")
    say(f"Goals: 0 errors: {verdict(errors_ok)} ({failures} failed requests, {user_errors} "
        f"errors in the users); p95 <= {GOAL_P95_MS:.0f} ms for every page and API request "
        f"type and all together (password checks apart): {verdict(p95_ok)}; no lost autosave: "
        f"{saves_verdict}")
    text = "\n".join(lines)
    print(text)
    (out / "report.txt").write_text(text + "\n")
    (out / "samples.json").write_text(json.dumps(samples, indent=1))
    (out / "summary.json").write_text(json.dumps({
        "people": people, "scale": args.scale, "duration": args.duration, "ramp_s": ramp,
        "target": args.target, "load_before": load_before, "load_after": load_after,
        "p95_ms_without_password_checks": whole_p95, "p95_ms_after_ramp": steady_p95,
        "failures": failures, "user_errors": user_errors, "autosave_check": check,
        "problems": problems, "goals_met": errors_ok and p95_ok and saves_ok}, indent=1))
    return errors_ok and p95_ok and saves_ok


# --- main -------------------------------------------------------------------------------------

def main() -> None:
    args = parse_args()
    duration = seconds_of(args.duration)
    out = Path(args.out or tempfile.mkdtemp(prefix="cxr-load-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("locust", path=str(Path(sys.executable).parent)) is None:
        sys.exit("locust is not installed: .venv/bin/pip install -e '.[bench]'")
    with contextlib.ExitStack() as stack:
        target = (LocalTarget if args.target == "local" else ComposeTarget)(args, out, stack)
        target.start()
        minutes = f"{max(1.0, duration / 60):g}"
        print(f"Building the load trial (scale {args.scale}, {minutes} min of work) ...",
              flush=True)
        accounts = target.seed(["--scale", str(args.scale), "--minutes", minutes])
        print(f"  {accounts['trial']}: {json.dumps(accounts['counts'])}", flush=True)
        target.serve()
        users = sum(len(accounts[k]) for k in ("readers", "raters", "seniors", "coordinators"))
        ramp = max(1.0, args.ramp)
        rate = users / ramp
        argv = [str(Path(sys.executable).parent / "locust"), "-f", str(LOCUSTFILE),
                "--headless", "-u", str(users), "-r", f"{rate:.3f}", "-t", f"{duration:.0f}s",
                "--host", target.url, "--csv", str(out / "locust"), "--only-summary",
                "--exit-code-on-error", "0", "--loglevel", "WARNING"]
        env = {**os.environ, "LOAD_ACCOUNTS": str(out / "accounts.json"), "LOAD_OUT": str(out),
               "NO_PROXY": "127.0.0.1,localhost"}
        load_before = os.getloadavg()
        print(f"Running locust: {users} users, {rate:.2f}/s, {duration:.0f} s, results in "
              f"{out} (load average {load_before[0]:.2f}) ...", flush=True)
        started = time.time()
        with (out / "locust.log").open("wb") as log:
            locust = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
            sampler = Sampler(target, locust_pid=locust.pid)
            thread = sampler.start()
            try:
                code = locust.wait(timeout=duration + 300)
            except subprocess.TimeoutExpired:
                locust.kill()
                code = locust.wait()
            sampler.stop_event.set()
            thread.join(timeout=30)
        load_after = os.getloadavg()
        if code != 0:
            print(f"locust exited with {code}; see {out / 'locust.log'}", flush=True)
        expected = out / "expected-saves.json"
        expected.write_text(json.dumps(expected_saves(out / "saves")))
        check, check_code = target.check(expected)
        problems = target.log_problems()
    print()
    ok = report(out=out, args=args, accounts=accounts, started=started, load_before=load_before,
                load_after=load_after, ramp=ramp, check=check, check_code=check_code,
                samples=sampler.rows, problems=problems, target_url=target.url,
                access_log=getattr(target, "access_log", ""))
    print(f"\nResults, logs and samples: {out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
