"""The coordinator's case page in a real Chromium, by keyboard only: screen, record consent and
enrol, each step's "I confirm" checkbox ticked with Space and its button pressed with Enter;
an unticked confirmation stops the form in the browser. No script, no policy violation."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.support.browser_world import expect, focused_matches, tab_to
from tests.trial.test_case_page import build_flow
from trial.models import AuditEvent, Case

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABS = 250  # the admin's header and navigation sidebar come first
REFUSED = re.compile(r"Content Security Policy|Refused to", re.I)


def sign_in(page, live_server, user) -> None:
    """Give the browser the session of ``user`` (the admin's sign-in is tested elsewhere)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value,
                               "url": live_server.url}])


def submit_with_enter(page, button: str) -> None:
    """Tab to ``button``, press Enter, wait for the page the POST leads back to."""
    tab_to(page, button, limit=TABS)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state("load")


def tick(page, checkbox: str) -> None:
    tab_to(page, checkbox, limit=TABS)
    page.keyboard.press("Space")
    assert page.locator(checkbox).is_checked()


def test_screen_consent_and_enrol_by_keyboard_only(page, live_server, tmp_path) -> None:
    flow = build_flow(tmp_path)
    case = flow.case
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if REFUSED.search(m.text) else None)
    sign_in(page, live_server, flow.coordinator)
    url = f"{live_server.url}{reverse('admin:trial_case_change', args=[case.pk])}"
    page.goto(url)
    page.wait_for_load_state("networkidle")
    thumb = page.locator(".case-thumb img")
    assert thumb.evaluate("img => img.complete && img.naturalWidth") > 0  # the PNG loaded
    expect(page.locator('[data-step="screen"]')).to_have_attribute("data-state", "next")
    assert page.locator("#screen_informed_consent").count() == 0  # consent is its own step

    tick(page, "#screen_suspected")  # inclusion met; the exclusion left unticked
    tick(page, "#confirm-screen")
    submit_with_enter(page, '[data-step-form="screen"] button[type="submit"]')
    expect(page.locator('[data-step="screen"]')).to_have_attribute("data-state", "done")
    expect(page.locator(".messagelist")).to_contain_text("screened, now Screened")

    # Enter on the consent button without the confirmation: the browser stops the form and
    # puts the focus on the checkbox, where Space ticks it
    tab_to(page, '[data-step-form="consent"] button[type="submit"]', limit=TABS)
    page.keyboard.press("Enter")
    assert page.evaluate("document.querySelector('#confirm-consent').validity.valueMissing")
    assert focused_matches(page, "#confirm-consent")
    assert page.url == url
    case.refresh_from_db()
    assert case.consent_recorded_at is None
    page.keyboard.press("Space")
    assert page.locator("#confirm-consent").is_checked()
    submit_with_enter(page, '[data-step-form="consent"] button[type="submit"]')
    expect(page.locator('[data-step="consent"]')).to_have_attribute("data-state", "done")
    expect(page.locator('[data-step="consent"]')).to_contain_text(
        f"Recorded by {flow.coordinator.username}")

    tick(page, "#confirm-enrol")
    tab_to(page, '[data-step-form="enrol"] button.default', limit=TABS)
    assert focused_matches(page, '[data-step-form="enrol"] button.default')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")  # the page and its thumbnail: nothing in flight
    expect(page.locator('[data-step="enrol"]')).to_have_attribute("data-state", "done")
    expect(page.locator(".messagelist")).to_contain_text(f"{case}: enrolled.")
    expect(page.locator('[data-step-form="assign"]')).to_be_visible()  # the next step

    case.refresh_from_db()
    assert case.status == Case.Status.ENROLLED
    assert case.consent_recorded_by == flow.coordinator
    assert case.eligibility_answers == {"suspected": True, "poor_image": False,
                                        "informed_consent": True}
    done = list(AuditEvent.objects.filter(object_type="trial.Case", object_id=str(case.pk))
                .order_by("pk").values_list("action", flat=True))
    assert done[-3:] == ["case.screened", "case.consent_recorded", "case.enrolled"]
    assert refused == []
