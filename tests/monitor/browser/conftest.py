"""The real-Chromium fixtures of ``tests/browser`` (Debian's Chromium driven by Playwright), for
the dashboard's browser tests here; see ``tests/browser/conftest.py``."""

from tests.browser.conftest import _playwright, browser, page  # noqa: F401 - the fixtures
