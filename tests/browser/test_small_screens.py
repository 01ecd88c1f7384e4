"""Tablets and phones in a real Chromium: every workspace fits the screen, and touch works.

At 390 x 844 (a phone, mobile viewport with touch), 768 x 1024 and 1024 x 768 (tablets, touch)
and 1280 x 900 (desktop, mouse): the image canvas is on screen and sized, the toolbar, the
history, the editor (or the scales) and the canvas do not overlap, nothing is wider than the
screen, and the tools are big enough to tap. On the phone, a reader opens a case from the
worklist, reads it with touch gestures (one finger = window/level, pinch = zoom, two fingers =
pan, double tap = fit, pan mode) and submits by tapping; a rater rates by tapping.

Touch gestures are real touches: CDP ``Input.dispatchTouchEvent``, which Chromium turns into
touch pointer events, as a touch screen would.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from rating.models import RaterItem, Rating
from reader import reading as rd
from reader.models import Reading
from tests.support.browser_world import DISPLAYED, canvas_pixels, expect
from tests.support.campaign_world import build_campaign_world
from tests.support.factories import MembershipFactory, TrialFactory
from tests.support.read_world import build_read_world
from trial.models import Arm, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 15_000  # as tests/browser/conftest.py
SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
              "is_mobile": True, "has_touch": True},
    "tablet": {"viewport": {"width": 1024, "height": 768}, "has_touch": True},
    "tablet-portrait": {"viewport": {"width": 768, "height": 1024}, "device_scale_factor": 2,
                        "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
STACKED_BELOW = 900  # px: the workspaces are one column (site.css)
TAP_PX = 40          # smallest height of something to tap
SHOTS = os.environ.get("SMALL_SCREEN_SHOTS")  # a folder: the phone tests save screenshots there

BOXES = """(selectors) => {
  const out = {};
  for (const [name, selector] of Object.entries(selectors)) {
    const el = document.querySelector(selector);
    if (!el) { out[name] = null; continue; }
    const r = el.getBoundingClientRect();
    out[name] = {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height};
  }
  return out;
}"""

ALL_BOXES = """(selector) => Array.from(document.querySelectorAll(selector))
  .filter(el => el.getClientRects().length)
  .map(el => { const r = el.getBoundingClientRect();
    return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height,
            text: el.textContent.trim()}; })"""

WIDTHS = """() => ({scrollWidth: document.scrollingElement.scrollWidth, innerWidth: innerWidth,
  wider: Array.from(document.querySelectorAll('body *'))
    .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5)
    .slice(0, 5).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                     + (el.className && el.className.baseVal === undefined
                        ? '.' + el.className.split(' ').join('.') : ''))})"""


# --- helpers -----------------------------------------------------------------------------------

@pytest.fixture
def screens(browser, _quiet_server_after_test):
    """Open a page in a new browser context emulating one of SCREENS; closed at the end."""
    contexts = []

    def open_page(name: str):
        context = browser.new_context(locale="en-GB", **SCREENS[name])
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def sign_in(page, live_server, user) -> None:
    """Give the browser the session of ``user`` only (the sign-in form is tested elsewhere)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.clear_cookies()
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value,
                               "url": live_server.url}])


class Network:
    """The page's requests still waiting for an answer, to end a test with none in flight."""

    def __init__(self, page) -> None:
        self.page, self.pending = page, set()
        page.on("request", lambda request: self.pending.add(request))
        page.on("requestfinished", lambda request: self.pending.discard(request))
        page.on("requestfailed", lambda request: self.pending.discard(request))

    def quiet(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)
        assert not self.pending, [r.url for r in self.pending]


def settle(page) -> None:
    """Two animation frames: what was scheduled has been laid out and drawn."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] - 0.5 and b["x"] < a["x"] + a["width"] - 0.5
            and a["y"] < b["y"] + b["height"] - 0.5 and b["y"] < a["y"] + a["height"] - 0.5)


def fits_the_screen(page) -> None:
    """Nothing is wider than the screen: no sideways scrolling of the page (a mobile browser
    would rather widen its layout viewport, so that is checked too)."""
    width = page.viewport_size["width"]
    widths = page.evaluate(WIDTHS)
    assert widths["innerWidth"] == width, widths
    assert widths["scrollWidth"] <= width, widths


def big_enough_to_tap(page, selector: str) -> None:
    boxes = page.evaluate(ALL_BOXES, selector)
    assert boxes, f"nothing visible matches {selector}"
    small = [b for b in boxes if b["height"] < TAP_PX - 0.5]
    assert not small, (selector, small)


def check_workspace(page, screen: str, editor: str) -> None:
    """A case, final-report or rating page once its image is drawn: laid out for the screen."""
    page.wait_for_selector(DISPLAYED, state="attached")
    settle(page)
    fits_the_screen(page)
    canvas = page.locator("#viewer canvas")
    expect(canvas).to_be_visible()
    boxes = page.evaluate(BOXES, {"toolbar": ".viewer-toolbar", "history": ".history",
                                  "editor": editor, "canvas": "#viewer canvas"})
    assert all(boxes.values()), boxes
    assert boxes["canvas"]["width"] > 300 and boxes["canvas"]["height"] > 200, boxes
    names = list(boxes)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert not overlaps(boxes[first], boxes[second]), (first, second, boxes)
    width = page.viewport_size["width"]
    if width < STACKED_BELOW:  # one column: the image on top, the history and editor below
        assert boxes["canvas"]["y"] + boxes["canvas"]["height"] <= boxes["history"]["y"]
        assert boxes["history"]["y"] < boxes["editor"]["y"]
        assert boxes["canvas"]["width"] >= width - 24, boxes
        assert boxes["editor"]["width"] >= width - 24, boxes
    else:  # side by side, as on the desktop: the report column right of the image
        assert boxes["canvas"]["x"] + boxes["canvas"]["width"] <= boxes["history"]["x"], boxes
        assert boxes["editor"]["x"] >= boxes["canvas"]["x"] + boxes["canvas"]["width"], boxes
    # The toolbar's buttons wrap onto rows inside the toolbar, none on another.
    tools = page.evaluate(ALL_BOXES, ".viewer-toolbar button")
    assert len(tools) >= 6, tools
    toolbar = boxes["toolbar"]
    for i, tool in enumerate(tools):
        assert tool["x"] >= toolbar["x"] - 0.5, tool
        assert tool["x"] + tool["width"] <= toolbar["x"] + toolbar["width"] + 0.5, (tool, toolbar)
        for other in tools[i + 1:]:
            assert not overlaps(tool, other), (tool, other)
    if SCREENS[screen].get("has_touch"):
        big_enough_to_tap(page, ".viewer-toolbar button")
    # The report's text boxes are as wide as the editor.
    for box in page.evaluate(ALL_BOXES, f"{editor} textarea"):
        assert box["width"] >= boxes["editor"]["width"] - 1, (box, boxes["editor"])


def wl(page) -> tuple[float, float]:
    centre, width = page.get_attribute("#viewer", "data-wl").split(",")
    return float(centre), float(width)


def zoom(page) -> float:
    return float(page.get_attribute("#viewer", "data-zoom"))


def wait_attr_change(page, name: str, before: str | None) -> str:
    page.wait_for_function(
        "([name, before]) => document.querySelector('#viewer').getAttribute(name) !== before",
        arg=[name, before])
    return page.get_attribute("#viewer", name)


class Fingers:
    """Touches on the screen (CSS pixels of the viewport), through Chromium's input pipeline."""

    def __init__(self, page) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)

    def _send(self, kind: str, points: list[tuple[float, float]]) -> None:
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": i, "radiusX": 2, "radiusY": 2, "force": 1}
            for i, (x, y) in enumerate(points)]})

    def move(self, start: list[tuple[float, float]], end: list[tuple[float, float]],
             steps: int = 10) -> None:
        """Put the fingers down at ``start``, slide them to ``end`` at a finger's pace, hold
        them still a moment and lift them. (Lifted at speed, Chromium would fling, and take the
        next tap for one that stops the fling: no click.)"""
        self._send("touchStart", start)
        for k in range(1, steps + 1):
            time.sleep(0.016)  # one frame
            self._send("touchMove", [(sx + (ex - sx) * k / steps, sy + (ey - sy) * k / steps)
                                     for (sx, sy), (ex, ey) in zip(start, end, strict=True)])
        time.sleep(0.15)
        self._send("touchMove", end)
        self._send("touchEnd", [])
        settle(self.page)


def screenshots(page, name: str, *, whole: bool = True) -> None:
    """With SMALL_SCREEN_SHOTS set: the screen, or the whole page screen by screen (a full-page
    capture would drop the mobile emulation while it is taken)."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    if not whole:
        page.screenshot(path=f"{SHOTS}/{name}.png")
        return
    height, total = page.viewport_size["height"], page.evaluate(
        "() => document.scrollingElement.scrollHeight")
    for n, top in enumerate(range(0, total, height), start=1):
        page.evaluate("(y) => window.scrollTo(0, y)", top)
        settle(page)
        page.screenshot(path=f"{SHOTS}/{name}-{n}.png")
    page.evaluate("() => window.scrollTo(0, 0)")
    settle(page)


def canvas_centre(page) -> tuple[float, float]:
    box = page.locator("#viewer canvas").bounding_box()  # viewport coordinates
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


# --- every page, every screen ---------------------------------------------------------------

@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_workspace_fits_the_screen(live_server, tmp_path, screen, screens) -> None:
    read = build_read_world(tmp_path / "read", cases=2)
    case = read.assignment(Arm.AI_ASSISTED, 0).case
    for arm in (Arm.AI_ASSISTED, Arm.SCP):  # read by both arms: the senior's to sign
        opened = rd.open_reading(read.readers[arm].assignments.get(case=case),
                                 user=read.readers[arm].user)
        rd.record_event(opened, "image_displayed")
        rd.submit(opened, findings="Clear lungs, no effusion.", impression="Normal.",
                  version=opened.version)
    rated = build_campaign_world(tmp_path / "rate", cases=1, raters=1)  # every instrument
    rater = rated.raters[0]
    long_name = TrialFactory(name="Randomised reader trial of AI-assisted chest radiograph "
                                  "reporting in emergency departments")
    MembershipFactory(trial=long_name, user=rater.user, role=Role.COORDINATOR)
    page = screens(screen)
    network = Network(page)
    slug = read.trial.slug
    ai_reader = read.readers[Arm.AI_ASSISTED]  # the AI banner makes the longest editor

    sign_in(page, live_server, ai_reader.user)
    page.goto(f"{live_server.url}/read/{slug}/")
    fits_the_screen(page)
    open_position = read.assignment(Arm.AI_ASSISTED, 1).position
    page.goto(f"{live_server.url}/read/{slug}/{open_position}/")
    expect(page.locator("#ai-banner")).to_be_visible()
    check_workspace(page, screen, "#report")
    expect(page.locator("#submit")).to_be_visible()

    sign_in(page, live_server, read.senior.user)
    page.goto(f"{live_server.url}/review/{slug}/")
    fits_the_screen(page)
    page.goto(f"{live_server.url}/review/{slug}/{case.pk}/")
    check_workspace(page, screen, "#report")
    expect(page.locator("#sign-password")).to_be_visible()

    sign_in(page, live_server, rater.user)
    page.goto(f"{live_server.url}/")
    fits_the_screen(page)
    expect(page.get_by_text(long_name.name)).to_be_visible()
    page.goto(f"{live_server.url}/rate/{rated.trial.slug}/{rated.campaign.pk}/")
    fits_the_screen(page)
    instruments = set()
    for item in RaterItem.objects.filter(rater=rater).order_by("position"):
        page.goto(f"{live_server.url}/rate/{rated.trial.slug}/{rated.campaign.pk}/{item.code}/")
        check_workspace(page, screen, "#rating")
        shown = page.eval_on_selector_all("fieldset.instrument",
                                          "els => els.map(e => e.dataset.instrument)")
        instruments.update(shown)
        if SCREENS[screen].get("has_touch"):
            big_enough_to_tap(page, "#submit-rating")
            big_enough_to_tap(page, "fieldset.instrument .level label")
            if "errors" in shown:
                big_enough_to_tap(page, ".error-grid input")
    assert {"errors", "preference", "likert"} <= instruments  # the error grid, two reports
    network.quiet()


# --- the phone, without a keyboard ------------------------------------------------------------

def test_a_reader_reads_and_submits_a_case_on_a_phone(live_server, tmp_path, screens) -> None:
    world = build_read_world(tmp_path, cases=2)
    reader = world.readers[Arm.SCP]
    assignment = world.assignment(Arm.SCP, 0)
    page = screens("phone")
    network = Network(page)
    fingers = Fingers(page)
    slug = world.trial.slug
    sign_in(page, live_server, reader.user)

    # The worklist fits, its links are big enough; a tap on the case opens it.
    page.goto(f"{live_server.url}/read/{slug}/")
    fits_the_screen(page)
    big_enough_to_tap(page, "#next-case")
    big_enough_to_tap(page, "table.worklist td a")
    link = page.locator("table.worklist td a", has_text=assignment.case.case_id)
    with page.expect_navigation():
        link.tap()
    assert page.url == f"{live_server.url}/read/{slug}/{assignment.position}/"
    check_workspace(page, "phone", "#report")
    screenshots(page, "phone-case")

    # One finger: window/level, as the mouse's left drag (right = wider, down = higher level).
    fitted_attr, (centre0, width0) = page.get_attribute("#viewer", "data-zoom"), wl(page)
    fitted = float(fitted_attr)
    before = page.get_attribute("#viewer", "data-wl")
    x, y = canvas_centre(page)
    fingers.move([(x, y)], [(x + 120, y + 80)])
    wait_attr_change(page, "data-wl", before)
    centre1, width1 = wl(page)
    assert width1 > width0 and centre1 > centre0
    assert zoom(page) == fitted

    # Pinch out: zoom in around the fingers' centre; the window stays.
    window = page.get_attribute("#viewer", "data-wl")
    fingers.move([(x - 40, y), (x + 40, y)], [(x - 130, y - 20), (x + 130, y + 20)])
    zoomed = float(wait_attr_change(page, "data-zoom", fitted_attr))
    assert zoomed > fitted
    assert page.get_attribute("#viewer", "data-wl") == window

    # Two fingers sliding together: pan (same zoom, the picture moves, the window stays).
    pixels = canvas_pixels(page)
    fingers.move([(x - 60, y), (x + 60, y)], [(x - 60 + 90, y + 70), (x + 60 + 90, y + 70)])
    assert zoom(page) == pytest.approx(zoomed, abs=1e-3)
    assert canvas_pixels(page)["sum"] != pixels["sum"]
    assert page.get_attribute("#viewer", "data-wl") == window

    # Pan mode (the toolbar's Pan button, as for the mouse): one finger moves the image.
    pan = page.locator("[data-action='pan']")
    pan.tap()
    expect(pan).to_have_attribute("aria-pressed", "true")
    pixels = canvas_pixels(page)
    fingers.move([(x, y)], [(x - 100, y - 90)])
    assert canvas_pixels(page)["sum"] != pixels["sum"]
    assert page.get_attribute("#viewer", "data-wl") == window
    pan.tap()
    expect(pan).to_have_attribute("aria-pressed", "false")

    # Double tap: the whole image again; tapping changes no window.
    page.touchscreen.tap(x, y)
    page.touchscreen.tap(x, y)
    expect(page.locator("#viewer")).to_have_attribute("data-zoom", fitted_attr)
    assert page.get_attribute("#viewer", "data-wl") == window

    # Write the report (the phone's keyboard: fill), tap Submit, tap the dialog's Submit.
    page.locator("#findings").fill("Heart size normal. Lungs clear.")
    page.locator("#impression").fill("No acute disease.")
    big_enough_to_tap(page, "#submit")
    page.locator("#submit").tap()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    big_enough_to_tap(page, "#confirm-dialog button")
    screenshots(page, "phone-case-confirm", whole=False)
    with page.expect_response(lambda r: r.url.endswith("/submit/")
                              and r.request.method == "POST") as submitted:
        page.locator("#confirm-ok").tap()
    assert submitted.value.status == 200
    expect(page.locator("#submitted-note")).to_have_text("Submitted. The report is locked.")
    expect(page.locator("#next-case")).to_be_visible()
    reading = Reading.objects.get(assignment=assignment)
    assert reading.status == Reading.Status.SUBMITTED
    assert reading.findings == "Heart size normal. Lungs clear."
    assert reading.impression == "No acute disease."
    fits_the_screen(page)
    network.quiet()


def tap_until(page, target: str, shown: str, tries: int = 3) -> None:
    """Tap ``target`` until ``shown`` is visible. On a loaded machine Chromium can take a tap
    that follows a scroll into view as the end of a fling and send no click; a person taps
    again, and so does the test (at most ``tries`` times, then it fails as before)."""
    for _ in range(tries - 1):
        page.locator(target).tap()
        try:
            expect(page.locator(shown)).to_be_visible(timeout=2000)
            return
        except AssertionError:
            continue
    page.locator(target).tap()
    expect(page.locator(shown)).to_be_visible()


def test_a_rater_rates_by_tapping_on_a_phone(live_server, tmp_path, screens) -> None:
    world = build_campaign_world(tmp_path, cases=1, raters=1,
                                 instruments=("likert", "radpeer", "errors"))
    rater = world.raters[0]
    total = RaterItem.objects.filter(rater=rater).count()
    assert total >= 2
    page = screens("phone")
    network = Network(page)
    sign_in(page, live_server, rater.user)

    page.goto(f"{live_server.url}/")
    fits_the_screen(page)
    big_enough_to_tap(page, "a.rating-campaign")
    with page.expect_navigation():
        page.locator("a.rating-campaign").tap()
    fits_the_screen(page)
    big_enough_to_tap(page, "table.rating-list td a")
    with page.expect_navigation():
        page.locator("#next-item").tap()

    expected: dict[str, dict] = {}
    for n in range(1, total + 1):
        expect(page.locator("#item-position")).to_have_text(f"Item {n}")
        check_workspace(page, "phone", "#rating")
        if n == 1:
            screenshots(page, "phone-rating")
        code = page.url.rstrip("/").rsplit("/", 1)[1]
        values: dict = {}
        for fieldset in page.locator("fieldset.instrument").all():
            name = fieldset.get_attribute("data-instrument")
            if name == "errors":
                fieldset.locator("#errors-omitted_finding-significant").fill("1")
                values[name] = "counts"
                continue
            radio = fieldset.locator(".level input").nth(1)
            fieldset.locator(".level label").nth(1).tap()
            expect(radio).to_be_checked()
            # A tap says what was picked and what is left, as a key press does.
            expect(page.locator("#rating-status")).to_contain_text(
                re.compile(r"Still to answer|All answered"))
            values[name] = radio.get_attribute("value")
        expected[code] = values
        tap_until(page, "#submit-rating", "#confirm-dialog")  # ratings are final here
        if n == 1:
            screenshots(page, "phone-rating-confirm", whole=False)
        if n < total:
            with page.expect_navigation():
                page.locator("#confirm-ok").tap()
        else:
            page.locator("#confirm-ok").tap()
            expect(page.locator("#all-done")).to_be_visible()

    ratings = {r.rater_item.code: r.values for r in
               Rating.objects.filter(rater_item__rater=rater).select_related("rater_item")}
    assert set(ratings) == set(expected)
    for code, values in expected.items():
        for name, value in values.items():
            if value == "counts":
                assert ratings[code][name]["omitted_finding"]["significant"] == 1
            else:
                assert ratings[code][name] == value, (code, name)
    network.quiet()
