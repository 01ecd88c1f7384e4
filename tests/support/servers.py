"""Start real PostgreSQL and Redis servers from the installed binaries, on loopback.

Used by the test suite (session fixtures) and the benchmarks. PostgreSQL's ``initdb`` refuses
to run as root, so as root the cluster is created and run as the unprivileged ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """A server binary is missing; the message says what to install."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, *, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ServerUnavailable(
        "PostgreSQL server binaries not found. Install them: apt-get install postgresql"
    )


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"

    def django_settings(self, name: str = "postgres") -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": self.user,
            "PASSWORD": "",
            "HOST": self.host,
            "PORT": str(self.port),
        }


def _as_service_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster with trust auth on a free loopback port."""
    bindir = postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="cxr-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
    port = free_port()
    log = root / "server.log"
    try:
        subprocess.run(
            _as_service_user([
                str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--no-sync",
            ]),
            check=True, capture_output=True, text=True,
        )
        subprocess.run(
            _as_service_user([
                str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                      "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                "start",
            ]),
            check=True, capture_output=True, text=True,
        )
        _wait_for_port(port, timeout=30)
        yield PostgresServer(host="127.0.0.1", port=port, user="postgres")
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr or ""
        if log.exists():
            detail += log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {detail}") from exc
    finally:
        subprocess.run(
            _as_service_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away Redis server on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server not found. Install it: apt-get install redis-server")
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="cxr-redis-"))
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, timeout=15, proc=proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)
