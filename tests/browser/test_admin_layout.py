"""The coordinator's admin in a real Chromium: the trial page's tools never cover the trial's
name, the randomisation list is extended for a site added late (form, confirmation, then the
new site's reader is allocated), and a wide list keeps its last column reachable."""

from __future__ import annotations

import pytest

from tests.browser.test_csp import _admin_sign_in
from tests.support.browser_world import expect
from tests.trial.test_randomization_extend import Setup
from trial import randomization as rz
from trial.models import AllocationSlot, RandomizationExtension

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_a_late_site_gets_its_reader_through_the_admin(live_server, page) -> None:
    setup = Setup()
    page.set_viewport_size({"width": 1024, "height": 768})
    _admin_sign_in(page, live_server, setup.coordinator)
    page.goto(f"{live_server.url}/admin/trial/trial/{setup.trial.pk}/change/")

    # The tools (many on this page) sit in their own row: none covers the page's title.
    title = page.locator("#content h2").first.bounding_box()
    tools = page.locator(".object-tools li")
    assert tools.count() >= 3
    for i in range(tools.count()):
        box = tools.nth(i).bounding_box()
        assert not _overlap(box, title), (tools.nth(i).inner_text(), box, title)

    # Extend the list for H4: the form needs the confirmation, then says what it did.
    with page.expect_navigation():
        page.get_by_role("link", name="Extend the list for a stratum").click()
    page.locator("select[name=stratum]").select_option("H4")
    page.locator("input[name=blocks]").fill("1")
    page.get_by_role("button", name="Extend").first.click()
    assert not RandomizationExtension.objects.exists()  # not confirmed: nothing happened
    page.locator("input[name=confirm]").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Extend").first.click()
    expect(page.locator(".messagelist")).to_contain_text("extended for stratum 'H4'")
    extension = RandomizationExtension.objects.get()
    assert str(extension.seed) not in page.content()
    slot = rz.allocate(setup.late, by=setup.coordinator)
    assert slot.extension == extension
    assert AllocationSlot.objects.filter(extension=extension).count() >= 2

    # The memberships list at tablet width: its last column (the arm) can be reached.
    page.goto(f"{live_server.url}/admin/trial/membership/")
    arm = page.locator("th.column-allocated_arm").first
    arm.scroll_into_view_if_needed()
    box = arm.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1024 + 1, box
    page.wait_for_load_state("networkidle")
