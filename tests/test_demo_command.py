"""The README's demo path on its embedded default: SQLite, in-process tasks, a real web server."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import _wait_for_port, free_port

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_on_sqlite_and_serves_the_login_page(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "DEMO_MODE": "1",
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input"], env=env, check=True, capture_output=True)
    seeded = subprocess.run(
        [*manage, "seed_demo", "--if-missing", "--cases", "6", "--excluded", "0"],
        env=env, check=True, capture_output=True, text=True,
    )
    assert "coordinator" in seeded.stdout and "cxr-demo" in seeded.stdout
    assert (tmp_path / "db.sqlite3").exists()

    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, timeout=30, proc=server)
        deadline = time.monotonic() + 10
        while True:
            response = httpx.get(f"http://127.0.0.1:{port}/accounts/login/")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200
        admin = httpx.get(f"http://127.0.0.1:{port}/admin/login/")
        assert admin.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
