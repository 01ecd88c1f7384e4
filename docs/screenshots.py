"""The guides' pictures, taken from the product as it is: a fresh demo driven in Chromium.

Each guide's shot list (``docs/shots/<guide>.yaml``: who signs in, which page, which steps,
what to photograph) is played in order on one fresh demo (``seed_demo``, its fixed seed), and
each picture is written to ``docs/img/<file>``. Run by the test command before the site is
built strictly (a picture the guides embed and the script did not make fails the build), so
no picture can show a screen that no longer exists::

    .venv/bin/python docs/screenshots.py            # all guides, into docs/img/
    .venv/bin/python docs/screenshots.py reader     # one guide's shots

Chromium is Debian's (``/usr/bin/chromium``), as in the browser tests. Exit status 1, with
each failed shot and why, when any shot cannot be taken.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "shots"
IMAGES = ROOT / "docs" / "img"
# The order the lists must be played in: each may rely on what the ones before it changed
# (a signed case gives the raters new items; see the lists' own comments).
ORDER = ("reader", "senior", "rater", "coordinator", "operations", "statistician")
PASSWORD = "cxr-demo"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1440, "height": 900}
TIMEOUT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Demo:
    """A fresh demo (its own DATA_DIR) served by Django's development server."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DEMO_MODE": "1", "DATA_DIR": str(folder),
                    "PORT": str(self.port), "DJANGO_SETTINGS_MODULE": "config.settings"}
        for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "STATIC_ROOT", "DEBUG"):
            self.env.pop(name, None)
        self.server: subprocess.Popen | None = None

    def manage(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    def __enter__(self) -> Demo:
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("seed_demo")
        self.server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the demo server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=10)


def _step(page: Any, step: dict[str, Any], base: str) -> None:
    (kind, arg), = step.items()
    if kind == "click":
        page.click(arg)
    elif kind == "wait":
        page.locator(arg).first.wait_for(state="visible")
    elif kind == "press":
        page.keyboard.press(arg)
    elif kind == "fill":
        page.locator(arg[0]).first.fill(arg[1])
    elif kind == "type":
        page.locator(arg[0]).first.press_sequentially(arg[1])
    elif kind == "hover":
        page.locator(arg).first.hover()
    elif kind == "select":
        page.locator(arg[0]).first.select_option(arg[1])
    elif kind == "goto":
        page.goto(base + arg)
    else:
        raise ValueError(f"unknown step {kind!r}")


class Browser:
    """Debian's Chromium; each shot in a fresh context (a shot may leave a dialog open or a
    form half filled), signed in as its user with that user's cookies from their first
    sign-in (a password check per shot would be most of the run)."""

    def __init__(self, playwright: Any, base: str) -> None:
        self.base = base
        self.browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        self.states: dict[str, dict] = {}

    def signed_in(self, user: str) -> Any:
        context = self.browser.new_context(viewport=VIEWPORT, locale="en-GB",
                                           storage_state=self.states.get(user))
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        if user not in self.states:
            self.sign_in(page, user)
        return page

    def sign_in(self, page: Any, user: str) -> None:
        page.context.clear_cookies()
        page.goto(f"{self.base}/accounts/login/")
        page.fill("#id_username", user)
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        self.states[user] = page.context.storage_state()

    def open(self, page: Any, user: str, url: str) -> None:
        """``url``, signing in again if the session was ended (a shot that signed out)."""
        page.goto(self.base + url)
        if "/accounts/login/" in page.url and not url.startswith("/accounts/login/"):
            self.sign_in(page, user)
            page.goto(self.base + url)

    def close(self) -> None:
        self.browser.close()


def take(browser: Browser, shot: dict[str, Any], out: Path,
         failures: Path | None = None) -> None:
    """One picture: sign in, open the page, play the steps, photograph (the page, whole, or
    the ``clip`` element). A failed shot leaves the screen as it was in ``failures``."""
    page = browser.signed_in(shot["user"])
    try:
        browser.open(page, shot["user"], shot["url"])
        for step in shot.get("steps") or []:
            _step(page, step, browser.base)
        target = out / shot["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if shot.get("clip"):
            page.locator(shot["clip"]).first.screenshot(path=str(target))
        else:
            page.screenshot(path=str(target), full_page=True)
    except Exception:
        if failures is not None:
            failures.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(failures / shot["file"].replace("/", "_")), full_page=True)
        raise
    finally:
        page.context.close()


def take_twice(browser: Browser, shot: dict[str, Any], out: Path,
               failures: Path | None = None) -> None:
    """``take``, once more in a fresh context if it timed out (a busy machine, e.g. CI's):
    said on the output, so a shot that needs it every time gets looked at."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        take(browser, shot, out)
    except PlaywrightTimeout as exc:
        print(f"RETRY {shot.get('file')}: {str(exc).splitlines()[0]}", flush=True)
        take(browser, shot, out, failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("guides", nargs="*", default=list(ORDER))
    parser.add_argument("--out", type=Path, default=IMAGES)
    parser.add_argument("--failures", type=Path, default=None,
                        help="where to leave the screen of each failed shot")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    failed: list[str] = []
    taken = 0
    started = time.monotonic()
    with (tempfile.TemporaryDirectory(prefix="cxr-docs-demo-") as folder,
          Demo(Path(folder)) as demo, sync_playwright() as playwright):
        browser = Browser(playwright, demo.url)
        try:
            for guide in [g for g in ORDER if g in args.guides]:
                path = SHOTS / f"{guide}.yaml"
                if not path.exists():
                    continue
                for shot in yaml.safe_load(path.read_text()) or []:
                    try:
                        take_twice(browser, shot, args.out, args.failures)
                        taken += 1
                    except Exception as exc:  # noqa: BLE001 - reported, then exit 1
                        failed.append(f"{guide}: {shot.get('file')}: {exc}".splitlines()[0])
        finally:
            browser.close()
    print(f"{taken} pictures in {time.monotonic() - started:.0f} s into {args.out}")
    for line in failed:
        print("FAILED", line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
