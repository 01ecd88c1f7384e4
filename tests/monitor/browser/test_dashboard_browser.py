"""The dashboard in a real Chromium: its numbers, tables and figures follow the database without
a reload, under the Content-Security-Policy, with no console error.

The poll interval comes from the page's data block (``MONITOR_POLL_SECONDS``, 1 s here). A
reading is submitted in the background through the service, as a reader's page would; the
page must show it at its next poll. The test ends on a blank page after a poll has answered,
so no request of the dashboard outlives it.
"""

from __future__ import annotations

import re

import pytest

from reader import reading as rd
from tests.support.browser_world import expect, sign_in
from tests.support.read_world import build_read_world
from trial.models import Arm, Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARK = "csp-violation:"
WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("MARK " + JSON.stringify({directive: e.effectiveDirective,
    blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
}, true);
""".replace("MARK", MARK)
REFUSED = re.compile(r"Content Security Policy|Refused to", re.I)


def is_poll(item) -> bool:
    request = getattr(item, "request", item)
    return request.url.endswith("/data.json")


def test_numbers_update_without_a_reload_when_a_reading_is_submitted(live_server, settings,
                                                                     tmp_path, page) -> None:
    settings.MONITOR_POLL_SECONDS = 1
    world = build_read_world(tmp_path, cases=2)
    slug, reader = world.trial.slug, world.readers[Arm.AI_ASSISTED]
    coordinator = Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user

    problems: list[str] = []
    page.context.add_init_script(WATCH)
    page.on("console", lambda m: problems.append(m.text) if (
        m.text.startswith(MARK) or REFUSED.search(m.text) or m.type == "error") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    polls = []
    page.on("request", lambda r: polls.append(r) if is_poll(r) else None)
    loads = []
    page.on("load", lambda p: loads.append(p.url))

    sign_in(page, live_server, coordinator, f"/monitor/{slug}/")
    submitted = page.locator('.card [data-number="readings.submitted"]')
    expect(submitted).to_have_text("0")
    row = page.locator(f'table[data-table="readers"] tr[data-key="r-{reader.pk}-{Arm.AI_ASSISTED}"]'
                       " td")
    expect(row.nth(4)).to_have_text("0")  # Submitted (after Arm, Assigned, Not opened, Open)
    with page.expect_response(is_poll) as first:
        pass
    assert first.value.status == 200
    page.evaluate("() => { window.stillTheSamePage = true; }")
    loaded = len(loads)

    # In the background, as the reader's own page would: open and submit a reading.
    opened = rd.open_reading(world.assignment(Arm.AI_ASSISTED, 0), user=reader.user)
    rd.submit(opened, findings="Clear.", impression="Normal.", version=opened.version,
              user=reader.user)

    expect(submitted).to_have_text("1", timeout=10_000)
    expect(row.nth(4)).to_have_text("1")
    expect(page.locator('[data-figure-text="completion"]')).to_contain_text(
        f"Readings, {world.trial.ai_assisted_label}: 1 submitted")
    expect(page.locator('[data-figure="completion"] svg desc')).to_contain_text("1 submitted")
    assert page.evaluate("() => window.stillTheSamePage") is True
    assert len(loads) == loaded  # updated in place, never reloaded
    assert len(polls) >= 2
    assert all(r.headers.get("x-background") == "1" for r in polls)  # not user activity

    # End with nothing in flight: right after a poll has answered, leave the page.
    with page.expect_response(is_poll):
        pass
    page.goto("about:blank")
    page.wait_for_timeout(100)
    assert problems == []
