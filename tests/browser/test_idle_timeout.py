"""Idle expiry in a real Chromium: a reader signed out by the idle timeout loses no typing.

The session ages past ``SESSION_IDLE_MINUTES`` while the case page is open; the next autosave
is refused (401) and the page says so, the text stays in the browser, and after signing in
again the case page restores it and saves it.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.sessions.backends.db import SessionStore

from reader.models import Reading
from tests.support import factories
from tests.support.browser_world import expect, sign_in, wait_displayed
from tests.support.read_world import ReadWorld, build_read_world
from trial.middleware import IDLE_KEY
from trial.models import Arm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path, cases=1)


def _findings(world: ReadWorld) -> str:
    return Reading.objects.get(assignment=world.assignment(Arm.SCP)).findings


def test_text_typed_before_an_idle_sign_out_comes_back(live_server, world: ReadWorld,
                                                        page) -> None:
    # (page last: it closes, sending its last events, before the database goes away)
    slug = world.trial.slug
    case_path = f"/read/{slug}/1/"
    sign_in(page, live_server, world.readers[Arm.SCP].user, case_path)
    wait_displayed(page)
    findings, status = page.locator("#findings"), page.locator("#save-status")
    findings.click()
    page.keyboard.type("Before expiry.")
    expect(status).to_contain_text("Saved")

    # The workstation is left alone past the idle limit.
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[IDLE_KEY] = time.time() - 31 * 60
    session.save()

    page.keyboard.type(" After expiry.")
    expect(status).to_contain_text("signed out")
    expect(status).to_contain_text("kept in this browser")
    assert _findings(world) == "Before expiry."

    page.goto(f"{live_server.url}{case_path}")
    assert "/accounts/login/" in page.url
    page.locator("#id_username").press_sequentially(world.readers[Arm.SCP].user.username)
    page.locator("#id_password").press_sequentially(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")
    assert page.url == f"{live_server.url}{case_path}"
    expect(findings).to_have_value("Before expiry. After expiry.")
    expect(status).to_contain_text("Saved")
    assert _findings(world) == "Before expiry. After expiry."

    # Submitted, the page sends nothing more: no request of it outlives the test's database.
    wait_displayed(page)
    with page.expect_response(lambda r: r.url.endswith("/submit/")) as submitted:
        page.keyboard.press("Control+Enter")
        page.keyboard.press("Enter")  # confirm: "Submit this report?"
    assert submitted.value.status == 200
