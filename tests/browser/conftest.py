"""Real-Chromium browser tests: Playwright (sync API) driving Debian's Chromium.

Use the ``page`` fixture together with pytest-django's ``live_server`` (a real HTTP server in a
thread of the test process, on the test PostgreSQL database) and mark the test module with::

    pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

``transaction=True`` is required: the live server answers from another thread, on its own
database connection, so it cannot see data inside a test's uncommitted transaction.

Chromium is Debian's package (``/usr/bin/chromium``), never a Playwright download. Without it the
browser tests are skipped with a message saying what to install, except under CI (``CI=true``),
where they fail, so a CI run cannot pass by silently skipping them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # containers and root: the setuid/namespace sandbox is unavailable
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
]
TIMEOUT_MS = 15_000


def _running_under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


@pytest.fixture(scope="package")
def _playwright() -> Iterator[object]:
    """One Playwright driver for all browser tests (this package).

    Playwright's sync API runs an asyncio event loop in the main thread (in a greenlet) for as
    long as the driver lives, so Django sees a "running event loop" in the test body and refuses
    ORM calls with SynchronousOnlyOperation, although nothing here is asynchronous: the test and
    the ORM calls stay strictly sequential. DJANGO_ALLOW_ASYNC_UNSAFE turns that check off; this
    is the standard pytest-django + Playwright practice. It is set only while the driver lives
    (package scope, not session scope): the driver stops when the last browser test is done, so
    the other tests of the run keep Django's check.
    """
    if not os.access(CHROMIUM, os.X_OK):
        message = (
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium package "
            "(apt-get install chromium; ./scripts/test.sh installs it when run as root)."
        )
        if _running_under_ci():
            pytest.fail(message + " CI=true, so this is a failure, not a skip.", pytrace=False)
        pytest.skip(message)

    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(_playwright):
    """Debian's headless Chromium, launched once for all browser tests."""
    browser = _playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


class _ServerGate:
    """Counts the live server's requests in flight and, once a test is over, turns new ones away.

    A page being closed sends its keepalive requests (the editor's last heartbeat and autosave),
    and the live server may still be answering them when pytest-django empties the database with
    TRUNCATE: the request's transaction and the TRUNCATE then wait on each other's table locks
    and PostgreSQL kills one of them as a deadlock (seen in CI: the test then errors in its
    teardown). Closing the gate makes every later request a 503 without touching the database,
    and the teardown waits for the requests already inside to finish before the flush.
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.active = 0
        self.open = True

    def enter(self) -> bool:
        with self.changed:
            if not self.open:
                return False
            self.active += 1
            return True

    def leave(self) -> None:
        with self.changed:
            self.active -= 1
            self.changed.notify_all()

    def close_and_drain(self, timeout: float = 30.0) -> bool:
        with self.changed:
            self.open = False
            return self.changed.wait_for(lambda: self.active == 0, timeout=timeout)


@pytest.fixture(scope="package")
def _server_gate() -> Iterator[_ServerGate]:
    """Wrap Django's WSGI handler (what the live server runs, inside its static-files layers)."""
    from django.core.handlers.wsgi import WSGIHandler

    gate = _ServerGate()
    original = WSGIHandler.__call__

    def gated(handler, environ, start_response):
        if not gate.enter():
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"the test is over"]
        try:
            return original(handler, environ, start_response)
        finally:
            gate.leave()

    WSGIHandler.__call__ = gated
    try:
        yield gate
    finally:
        WSGIHandler.__call__ = original


@pytest.fixture
def _quiet_server_after_test(_server_gate: _ServerGate) -> Iterator[None]:
    """Open the gate for the test; afterwards close it and wait until no request is running.

    Requested by ``page``, so it is set up after the database fixture and torn down after the
    page's context is closed and before the database is flushed.
    """
    with _server_gate.changed:
        _server_gate.open = True
    yield
    if not _server_gate.close_and_drain():
        raise RuntimeError("the live server still had requests running 30 s after the test")


@pytest.fixture
def page(browser, _quiet_server_after_test):
    """A fresh page in a fresh browser context (own cookies and storage) for each test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()
