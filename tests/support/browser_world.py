"""Helpers for the browser tests of the reading workspace: signing in through the form, waiting
for the image, recording what the page receives, reading the viewer canvas, keyboard focus."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from playwright.sync_api import Browser, BrowserContext, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.support import factories

DISPLAYED = '#viewer[data-displayed="1"]'
RECORDED_TYPES = {"document", "xhr", "fetch", "script"}
TIMEOUT_MS = 15_000  # as tests/browser/conftest.py


def sign_in(page: Page, live_server, user, next_path: str) -> None:
    """Open ``next_path`` signed out (redirect to /accounts/login/), type, press Enter."""
    page.goto(f"{live_server.url}{next_path}")
    assert "/accounts/login/" in page.url, page.url
    page.locator("#id_username").press_sequentially(user.username)
    page.locator("#id_password").press_sequentially(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")
    assert page.url == f"{live_server.url}{next_path}", page.url


def wait_displayed(page: Page) -> float:
    """Wait until the viewer has drawn real pixels; the monotonic time it was seen."""
    page.wait_for_selector(DISPLAYED, state="attached")
    return time.monotonic()


def is_event(kind: str):
    """A predicate for ``expect_response``/``expect_request``: a page event of ``kind``."""

    def matches(item) -> bool:
        request = getattr(item, "request", item)
        return (request.url.endswith("/events/") and request.method == "POST"
                and f'"kind":"{kind}"' in (request.post_data or "").replace(" ", ""))

    return matches


def reopen(browser: Browser, context: BrowserContext) -> BrowserContext:
    """A new browser context with ``context``'s cookies and localStorage: the browser started
    again from its profile."""
    restarted = browser.new_context(storage_state=context.storage_state(),
                                    viewport={"width": 1280, "height": 900}, locale="en-GB")
    restarted.set_default_timeout(TIMEOUT_MS)
    return restarted


def edit_key(page: Page) -> str:
    """The key the page's Keyboard list gives for writing in FINDINGS (``e``: ``f`` fits the
    image in the viewer)."""
    key = page.evaluate("""() => {
      for (const dt of document.querySelectorAll('.shortcuts dt')) {
        const dd = dt.nextElementSibling;
        if (dd && dd.textContent.includes('FINDINGS')) return dt.textContent.trim();
      }
      return null;
    }""")
    assert key and len(key) == 1, f"the page documents no single key for FINDINGS: {key!r}"
    return key.lower()


def focused_matches(page: Page, selector: str) -> bool:
    return page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)",
                         selector)


def tab_to(page: Page, selector: str, *, key: str = "Tab", limit: int = 60) -> int:
    """Press Tab (or ``key``) until the focused element matches ``selector``; presses used."""
    for presses in range(1, limit + 1):
        page.keyboard.press(key)
        if focused_matches(page, selector):
            return presses
    active = page.evaluate("() => document.activeElement && document.activeElement.outerHTML")
    raise AssertionError(f"{key} x{limit} never reached {selector}; focus is on {active}")


CANVAS_SUM = """() => {
  const canvas = document.querySelector('#viewer canvas');
  const w = canvas.width, h = canvas.height;
  const x = Math.floor(w / 4), y = Math.floor(h / 4);
  const data = canvas.getContext('2d')
    .getImageData(x, y, Math.floor(w / 2), Math.floor(h / 2)).data;
  let sum = 0, lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    sum += data[i] + data[i + 1] + data[i + 2];
    if (data[i]) lit++;
  }
  return {sum: sum, lit: lit, w: w, h: h};
}"""


def canvas_pixels(page: Page) -> dict:
    """Sum of the RGB values (and count of non-black pixels) of the canvas's central half."""
    return page.evaluate(CANVAS_SUM)


@dataclass
class Traffic:
    """Everything a page sent and received: response bodies (documents, scripts, fetch/XHR,
    including the HTML) and the bodies of the requests it sent."""

    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    posts: list[tuple[str, str]] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Traffic:
        page.on("request", self._request)
        page.on("response", self._response)
        return self

    def _request(self, request) -> None:
        if request.post_data_buffer:
            self.posts.append((request.url, request.post_data_buffer.decode("utf-8", "replace")))

    def _response(self, response) -> None:
        if response.request.resource_type not in RECORDED_TYPES:
            return
        if 300 <= response.status < 400 or response.status == 204:
            return  # redirects and 204s have no body
        try:
            self.bodies.append((response.url, response.body()))
        except PlaywrightError as exc:  # e.g. a page navigated away before the body was read
            self.unread.append(f"{response.url}: {exc}")

    def urls(self) -> list[str]:
        return [url for url, _ in self.bodies]

    def containing(self, text: str) -> list[str]:
        """Where ``text`` occurs (case-insensitive), in a response body or a request body."""
        needle = text.lower()
        found = [url for url, body in self.bodies
                 if needle in body.decode("utf-8", "replace").lower()]
        found += [f"request to {url}" for url, data in self.posts if needle in data.lower()]
        return found


def without_csrf_tokens(html: str) -> str:
    """The HTML with CSRF token values blanked (random letters could spell anything)."""
    html = re.sub(r'(name="csrf-token" content=")[^"]*', r"\1", html)
    return re.sub(r'(name="csrfmiddlewaretoken" value=")[^"]*', r"\1", html)


__all__ = ["DISPLAYED", "Traffic", "canvas_pixels", "edit_key", "expect", "focused_matches",
           "is_event", "reopen", "sign_in", "tab_to", "wait_displayed", "without_csrf_tokens"]
