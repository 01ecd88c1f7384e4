"""The image viewer in a real Chromium: real pixels drawn, window/level, invert, zoom, keys."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.models import Image, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DISPLAYED = "#viewer[data-displayed='1']"


def coordinator_with_image(folder, *, rows: int = 512, columns: int = 400, **kwargs):
    """A trial coordinator and one imported synthetic radiograph of that size."""
    site = SiteFactory(trial=TrialFactory())
    user = UserFactory()
    MembershipFactory(trial=site.trial, user=user, role=Role.COORDINATOR, site=site)
    job = import_path(make_cxr(folder / "cxr.dcm", seed=21, rows=rows, columns=columns, **kwargs),
                      trial=site.trial, site=site)
    assert job.imported == 1, job.report
    return user, Image.objects.get(case__trial=site.trial)


def sign_in(page, live_server, user) -> None:
    """Give the browser the session of ``user`` (the sign-in form is tested elsewhere)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value,
                               "url": live_server.url}])


def open_viewer(page, live_server, user, image) -> None:
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_selector(DISPLAYED)


def sample(page) -> list[int]:
    """Red values of a 5x5 grid of points inside the drawn image."""
    return page.evaluate("""() => {
        const canvas = document.querySelector('#viewer canvas');
        const ctx = canvas.getContext('2d');
        const out = [];
        for (let i = 1; i <= 5; i++) for (let j = 1; j <= 5; j++) {
            const x = Math.round(canvas.width * (0.3 + 0.4 * i / 6));
            const y = Math.round(canvas.height * (0.1 + 0.8 * j / 6));
            out.push(ctx.getImageData(x, y, 1, 1).data[0]);
        }
        return out;
    }""")


def attr(page, name: str) -> str | None:
    return page.get_attribute("#viewer", name)


def wait_attr_change(page, name: str, before: str | None) -> str:
    page.wait_for_function(
        "([name, before]) => document.querySelector('#viewer').getAttribute(name) !== before",
        arg=[name, before])
    return attr(page, name)


def settle(page) -> None:
    """Two animation frames: whatever was scheduled has been drawn."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def canvas_center(page) -> tuple[float, float]:
    box = page.locator("#viewer canvas").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_the_image_is_displayed_with_its_default_window(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path)
    events = []
    page.on("console", lambda m: events.append(m.text) if m.text.startswith("displayed") else None)
    sign_in(page, live_server, user)
    page.add_init_script("""document.addEventListener('viewer:displayed',
        e => console.log('displayed ' + e.detail.image + ' ' + e.target.id), true);""")
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_selector(DISPLAYED)

    center, width = (float(v) for v in attr(page, "data-wl").split(","))
    assert (center, width) == (image.window_center, image.window_width)
    assert attr(page, "data-invert") == "0"
    pixels = sample(page)
    assert max(pixels) - min(pixels) > 40  # a radiograph, not a blank canvas
    settle(page)
    assert events == [f"displayed {image.pk} viewer"]
    assert page.locator(".viewer-presets button").count() == 5
    assert "W " in page.locator(".viewer-overlay").inner_text()
    assert page.locator(".viewer-keys").is_visible()


def test_dragging_changes_window_and_level(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path)
    open_viewer(page, live_server, user, image)
    before_pixels, before_wl = sample(page), attr(page, "data-wl")
    x, y = canvas_center(page)

    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y + 60, steps=8)  # narrower window, higher level
    page.mouse.up()
    after_wl = wait_attr_change(page, "data-wl", before_wl)
    settle(page)

    (c0, w0), (c1, w1) = ([float(v) for v in wl.split(",")] for wl in (before_wl, after_wl))
    assert w1 < w0 and c1 > c0
    assert sample(page) != before_pixels


def test_a_slow_machine_previews_on_screen_while_dragging(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path)
    open_viewer(page, live_server, user, image)
    page.evaluate("() => document.querySelector('#viewer')"
                  ".setAttribute('data-preview-above-ms', '-1')")  # every machine is slow
    before = sample(page)
    x, y = canvas_center(page)

    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y + 60, steps=8)
    page.wait_for_selector("#viewer[data-preview='1']")
    settle(page)
    previewed = sample(page)
    assert previewed != before
    page.mouse.up()
    page.wait_for_selector("#viewer[data-preview='0']")  # full resolution again on release
    settle(page)
    released = sample(page)
    # Nearest samples while dragging, the smoothed full image after: nearly the same picture.
    assert sum(abs(a - b) for a, b in zip(previewed, released, strict=True)) / 25 < 12


def test_i_inverts_and_presets_and_reset_restore(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path)
    open_viewer(page, live_server, user, image)
    before, wl = sample(page), attr(page, "data-wl")

    page.keyboard.press("i")
    wait_attr_change(page, "data-invert", "0")
    settle(page)
    inverted = sample(page)
    assert all(abs(a + b - 255) <= 2 for a, b in zip(before, inverted, strict=True)), (
        before, inverted)

    page.keyboard.press("5")  # full range
    full = wait_attr_change(page, "data-wl", wl)
    page.keyboard.press("r")
    assert wait_attr_change(page, "data-wl", full) == wl
    assert attr(page, "data-invert") == "0"
    settle(page)
    assert sample(page) == before


def test_zoom_and_pan_change_the_view_and_reset_restores_it(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path)
    open_viewer(page, live_server, user, image)
    fitted, before = attr(page, "data-zoom"), sample(page)

    page.keyboard.press("+")
    zoomed = wait_attr_change(page, "data-zoom", fitted)
    assert float(zoomed) == pytest.approx(float(fitted) * 1.25)
    page.click("[data-action='zoom-in']")
    page.mouse.move(*canvas_center(page))
    page.mouse.wheel(0, -300)
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert float(attr(page, "data-zoom")) > float(zoomed)
    assert sample(page) != before

    x, y = canvas_center(page)  # Shift+drag pans without touching the window
    wl = attr(page, "data-wl")
    page.keyboard.down("Shift")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 80, y + 40, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert attr(page, "data-wl") == wl

    zoomed = attr(page, "data-zoom")
    page.click("[data-action='fit']")
    assert wait_attr_change(page, "data-zoom", zoomed) == fitted
    settle(page)
    assert sample(page) == before


def test_keys_are_ignored_while_typing(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path)
    open_viewer(page, live_server, user, image)
    page.evaluate("""() => {
        const box = document.createElement('textarea');
        box.id = 'report';
        document.body.appendChild(box);
    }""")
    state = (attr(page, "data-wl"), attr(page, "data-invert"), attr(page, "data-zoom"))

    page.focus("#report")
    page.keyboard.type("ri+-15 fp")
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert page.input_value("#report") == "ri+-15 fp"
    assert (attr(page, "data-wl"), attr(page, "data-invert"), attr(page, "data-zoom")) == state

    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("Control+i")  # modifiers are the browser's and the page's
    settle(page)
    assert attr(page, "data-invert") == "0"
    page.keyboard.press("i")
    assert wait_attr_change(page, "data-invert", "0") == "1"


def test_a_failed_fetch_says_so(page, live_server, tmp_path) -> None:
    user, image = coordinator_with_image(tmp_path)
    sign_in(page, live_server, user)
    page.route("**/api/images/*/pixels/", lambda route: route.fulfill(status=500, body="no"))
    page.goto(f"{live_server.url}/images/{image.pk}/")
    error = page.locator(".viewer-error")
    error.wait_for(state="visible")
    assert "could not be loaded" in error.inner_text() and "500" in error.inner_text()
    assert attr(page, "data-displayed") == "0"


def test_a_2500_by_3000_16_bit_image_displays_and_windows(page, live_server, tmp_path,
                                                          record_property) -> None:
    user, image = coordinator_with_image(tmp_path, rows=3000, columns=2500)
    open_viewer(page, live_server, user, image)
    first = float(attr(page, "data-render-ms"))
    before, wl = sample(page), attr(page, "data-wl")

    timed = page.evaluate("""async () => {
        const section = document.querySelector('#viewer');
        const frame = () => new Promise(r => requestAnimationFrame(r));
        const times = [];
        for (const key of ['2', '3', '4', '5', '1']) {
            document.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
            await frame(); await frame();
            times.push(Number(section.getAttribute('data-render-ms')));
        }
        return times;
    }""")
    x, y = canvas_center(page)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y - 80, steps=10)
    preview = attr(page, "data-preview-ms")
    page.mouse.up()
    after = wait_attr_change(page, "data-wl", wl)
    settle(page)
    assert after != wl and sample(page) != before
    record_property("first_render_ms", first)
    record_property("full_rewindow_ms", timed)
    record_property("drag_preview_ms", preview)
    print(f"\n2500x3000: first render {first} ms; full re-window {timed} ms; "
          f"drag preview frame {preview} ms")
