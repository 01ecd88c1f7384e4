"""The real-Chromium fixtures of ``tests/browser`` (Debian's Chromium driven by Playwright), for
the dashboard's browser tests here; see ``tests/browser/conftest.py``."""

from tests.browser.conftest import (  # noqa: F401 - the fixtures
    _playwright,
    _quiet_server_after_test,
    _server_gate,
    browser,
    page,
)
