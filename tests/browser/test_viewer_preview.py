"""The reduced-resolution preview in a real Chromium: drawn first (with the current window,
inversion, zoom and pan, and a "loading full resolution" hint), then replaced by the full
data with the view kept; the reading clock still starts at the full image.

The full pixels are held back with a route handler (the request waits until the test lets it
go), so what is on screen while only the preview has arrived can be looked at.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.test_viewer import attr, coordinator_with_image, sample, settle, sign_in
from tests.support.browser_world import is_event
from tests.support.dicom_files import write_dicom
from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from tests.support.read_world import build_read_world
from trial.dicom import viewer_pixels
from trial.dicom.importer import import_path
from trial.models import Arm, Image, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PIXELS = "**/api/images/*/pixels/"
REDUCED = "#viewer[data-resolution='reduced']"
FULL = "#viewer[data-resolution='full'][data-displayed='1']"
EVENTS = """for (const name of ['viewer:first-pixels', 'viewer:displayed'])
    document.addEventListener(name, e => console.log(
        'event ' + e.type + ' ' + e.detail.image + ' ' + (e.detail.resolution || '')), true);"""
# Red values of the 24 x 24 canvas pixels at the centre of the canvas.
CENTRE = """() => {
    const canvas = document.querySelector('#viewer canvas');
    const x = Math.floor(canvas.width / 2) - 12, y = Math.floor(canvas.height / 2) - 12;
    const data = canvas.getContext('2d').getImageData(x, y, 24, 24).data;
    const out = [];
    for (let i = 0; i < data.length; i += 4) out.push(data[i]);
    return out;
}"""


class Held:
    """Requests to ``pattern`` (the full pixels), held until ``release``."""

    def __init__(self, page, pattern: str = PIXELS) -> None:
        self.page = page
        self.routes: list = []
        page.route(pattern, self.hold)

    def hold(self, route) -> None:
        self.routes.append(route)  # neither continued nor fulfilled: the request waits

    def release(self) -> None:
        for _ in range(100):  # asked for once the preview is in: maybe a moment after
            if self.routes:
                break
            self.page.wait_for_timeout(50)
        assert self.routes, "the full pixels were never requested"
        for route in self.routes:
            route.continue_()
        self.routes.clear()


def checkerboard_image(folder) -> tuple[object, Image]:
    """1201 x 1001, 0 and 4000 alternating pixel by pixel: its preview (factor 2) is 2000
    everywhere (each block holds as many of each; the odd last row and column too) but the
    bottom-right corner, the full image is black and white squares once zoomed in."""
    rows, columns = 1201, 1001
    pixels = (np.indices((rows, columns)).sum(axis=0) % 2 * 4000).astype(np.uint16)
    site = SiteFactory(trial=TrialFactory())
    user = UserFactory()
    MembershipFactory(trial=site.trial, user=user, role=Role.COORDINATOR, site=site)
    job = import_path(write_dicom(folder / "board.dcm", pixels, bits_stored=12),
                      trial=site.trial, site=site)
    assert job.imported == 1, job.report
    return user, Image.objects.get(case__trial=site.trial)


def events(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if m.text.startswith("event ") else None)
    page.add_init_script(EVENTS)
    return seen


def test_the_preview_shows_first_and_the_full_image_replaces_it(page, live_server,
                                                               tmp_path) -> None:
    user, image = checkerboard_image(tmp_path)
    preview = viewer_pixels.viewer_meta(image)["preview"]
    assert (preview["factor"], preview["rows"], preview["columns"]) == (2, 601, 501)
    seen = events(page)
    sign_in(page, live_server, user)
    held = Held(page)
    asked, warnings = [], []
    page.on("request", lambda r: asked.append(r.url) if "/preview/" in r.url else None)
    page.on("console", lambda m: warnings.append(m.text) if "preload" in m.text else None)
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_selector(REDUCED)

    # Only the preview: the hint is up, the full image is not "displayed" yet.
    hint = page.locator(".viewer-hint")
    assert hint.is_visible() and "full resolution" in hint.inner_text()
    assert page.locator(".viewer-loading").is_hidden()
    assert attr(page, "data-displayed") == "0" and attr(page, "data-first-pixels") == "reduced"
    # The keyboard works on the preview: zoom in to 8+ screen pixels per image pixel.
    fitted = float(attr(page, "data-zoom"))
    for _ in range(13):
        page.keyboard.press("+")
    settle(page)
    zoom = attr(page, "data-zoom")
    assert float(zoom) == pytest.approx(fitted * 1.25 ** 13, rel=1e-3) and float(zoom) >= 8
    board = page.evaluate(CENTRE)
    # The preview's 2000 in the full-range window (0..4000): mid grey, no black, no white.
    assert all(120 <= v <= 136 for v in board), sorted(set(board))
    assert seen == [f"event viewer:first-pixels {image.pk} reduced"]

    held.release()
    page.wait_for_selector(FULL)
    settle(page)
    assert hint.is_hidden()
    assert attr(page, "data-zoom") == zoom  # the view is kept
    board = page.evaluate(CENTRE)
    assert min(board) <= 5 and max(board) >= 250, sorted(set(board))  # the real squares
    assert sum(v <= 5 for v in board) > 150 and sum(v >= 250 for v in board) > 150
    assert seen == [f"event viewer:first-pixels {image.pk} reduced",
                    f"event viewer:displayed {image.pk} "]
    # The page preloads the preview and the viewer's fetch uses that download.
    assert asked == [f"{live_server.url}/api/images/{image.pk}/preview/"]
    assert page.locator("link[rel=preload][as=fetch]").get_attribute("href") == (
        f"/api/images/{image.pk}/preview/")
    assert warnings == []


def test_the_preview_is_windowed_like_the_full_image(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path, rows=1500, columns=1200)
    assert viewer_pixels.viewer_meta(image)["preview"]["factor"] == 3
    sign_in(page, live_server, user)
    held = Held(page)
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_selector(REDUCED)
    settle(page)
    first = sample(page)
    assert max(first) - min(first) > 40  # a radiograph, not a blank canvas

    # Window, inversion and a pan set on the preview apply to it, and are kept for the full.
    page.keyboard.press("3")
    page.keyboard.press("i")
    page.keyboard.press("ArrowUp")
    settle(page)
    state = (attr(page, "data-wl"), attr(page, "data-invert"), attr(page, "data-zoom"))
    assert state[1] == "1"
    previewed = sample(page)
    assert previewed != first

    held.release()
    page.wait_for_selector(FULL)
    settle(page)
    assert (attr(page, "data-wl"), attr(page, "data-invert"), attr(page, "data-zoom")) == state
    full = sample(page)
    # The same values (scale and offset) through the same window: nearly the same picture.
    assert sum(abs(a - b) for a, b in zip(previewed, full, strict=True)) / 25 < 12, (
        previewed, full)


def test_without_a_preview_the_full_image_loads_as_before(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path, rows=1500, columns=1200)
    seen = events(page)
    sign_in(page, live_server, user)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/images/" in r.url else None)
    page.route("**/api/images/*/preview/", lambda route: route.fulfill(status=500, body="no"))
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_selector(FULL)
    assert page.locator(".viewer-error").is_hidden() and page.locator(".viewer-hint").is_hidden()
    assert seen == [f"event viewer:first-pixels {image.pk} full",
                    f"event viewer:displayed {image.pk} "]
    assert sorted(u.rsplit("/", 2)[-2] for u in asked) == ["pixels", "preview"]

    # An image prepared before previews: its metadata offers none, none is asked for.
    (viewer_pixels.derived_dir(image) / viewer_pixels.PREVIEW_NAME).unlink()
    asked.clear()
    page.unroute("**/api/images/*/preview/")
    page.reload()
    page.wait_for_selector(FULL)
    assert attr(page, "data-first-pixels") == "full"
    assert [u.rsplit("/", 2)[-2] for u in asked] == ["pixels"]


def test_a_preview_that_does_not_come_does_not_hold_up_the_image(page, live_server,
                                                                 tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path, rows=1500, columns=1200)
    sign_in(page, live_server, user)
    Held(page, "**/api/images/*/preview/")  # never released
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_selector(FULL)
    assert attr(page, "data-first-pixels") == "full"
    assert page.locator(".viewer-hint").is_hidden()


def test_the_reading_clock_starts_at_the_full_image(page, live_server, tmp_path,
                                                   monkeypatch) -> None:
    monkeypatch.setattr(viewer_pixels, "PREVIEW_MAX_SIDE", 32)  # 64 x 48 images get a preview
    world = build_read_world(tmp_path, cases=1)
    reader = world.readers[Arm.AI_ASSISTED].user
    sign_in(page, live_server, reader)
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "") if is_event(
        "image_displayed")(r) else None)
    held = Held(page)
    page.goto(f"{live_server.url}/read/{world.trial.slug}/1/")
    page.wait_for_selector(REDUCED)
    page.wait_for_timeout(500)  # time for an early event to be sent, if it were
    assert posted == [] and attr(page, "data-displayed") == "0"
    with page.expect_request(is_event("image_displayed")):
        held.release()
    assert attr(page, "data-resolution") == "full"
