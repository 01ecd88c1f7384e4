"""The invitation flow end to end in a real Chromium.

A coordinator signs in to the admin, opens *Memberships*, presses *Invite a person*, fills the
form (e-mail, name, role, site) and sends it. The e-mail is read from Django's outbox (the
live server runs in a thread of this process, with the test run's in-memory e-mail backend);
its link, from ``SITE_URL`` (set to the live server), is followed in a fresh browser context:
a weak password is refused with the validators' words, a good one is set, and the new reader
signs in with it and reaches their home page.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from tests.support import factories
from tests.support.browser_world import expect
from trial.models import AuditEvent, Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NEW_PASSWORD = "ochre-kestrel-tides-41"


def test_a_coordinator_invites_a_reader_who_chooses_a_password_and_signs_in(
        settings, live_server, page) -> None:
    # (page last: it closes before the database goes away)
    settings.SITE_URL = live_server.url
    trial = factories.TrialFactory(name="Trial Alpha", slug="alpha")
    site = factories.SiteFactory(trial=trial, code="A1", name="Hospital A1")
    coordinator = factories.UserFactory(username="coord-anna", is_staff=True)
    factories.MembershipFactory(trial=trial, user=coordinator, role=Role.COORDINATOR, site=site)
    mail.outbox.clear()

    # The coordinator: admin sign-in, Memberships, "Invite a person".
    page.goto(f"{live_server.url}/admin/trial/membership/")
    assert "/admin/login/" in page.url, page.url
    page.locator("#id_username").press_sequentially("coord-anna")
    page.locator("#id_password").press_sequentially(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")
    assert page.url == f"{live_server.url}/admin/trial/membership/"
    with page.expect_navigation():
        page.locator("#invite-person").click()
    assert page.url.startswith(f"{live_server.url}/admin/accounts/person/invite/")
    expect(page.locator("#id_trial")).to_have_value(str(trial.pk))  # their only trial
    page.locator("#id_email").fill("anna.berg@hospital.example")
    page.locator("#id_first_name").fill("Anna")
    page.locator("#id_last_name").fill("Berg")
    page.locator("#id_role").select_option(Role.READER)
    page.locator("#id_site").select_option(str(site.pk))
    page.locator("#id_years_experience").fill("3")
    with page.expect_navigation():
        page.locator("#invite-form input[name=_invite]").click()
    assert page.url == f"{live_server.url}/admin/accounts/person/"
    expect(page.locator(".messagelist")).to_contain_text("Invited: anna.berg is reader of "
                                                         "Trial Alpha")
    expect(page.locator("#result_list")).to_contain_text("anna.berg")

    # The e-mail, plain text, with its one-time link from SITE_URL.
    [message] = mail.outbox
    assert message.to == ["anna.berg@hospital.example"]
    links = re.findall(r"https?://\S+/accounts/welcome/\S+/", message.body)
    assert len(links) == 1 and links[0].startswith(f"{live_server.url}/accounts/welcome/")

    # The invited reader, in a browser of their own.
    page.context.clear_cookies()
    page.goto(links[0])
    assert page.url.endswith("/set-password/"), page.url
    expect(page.locator("h1")).to_have_text("Welcome: choose your password")
    expect(page.locator("#username")).to_have_text("anna.berg")
    page.locator("#id_new_password1").fill("annaberg1234")
    page.locator("#id_new_password2").fill("annaberg1234")
    with page.expect_navigation():
        page.locator("form.set-password button[type=submit]").click()
    expect(page.locator("#password2-problems")).to_contain_text("too similar")
    page.locator("#id_new_password1").fill(NEW_PASSWORD)
    page.locator("#id_new_password2").fill(NEW_PASSWORD)
    with page.expect_navigation():
        page.locator("form.set-password button[type=submit]").click()
    expect(page.locator("#password-set")).to_be_visible()

    with page.expect_navigation():
        page.locator("#sign-in").click()
    assert "/accounts/login/" in page.url
    page.locator("#id_username").press_sequentially("anna.berg")
    page.locator("#id_password").press_sequentially(NEW_PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")
    assert page.url == f"{live_server.url}/"
    expect(page.locator(".topbar .who")).to_have_text("anna.berg")

    user = get_user_model().objects.get(username="anna.berg")
    assert Membership.objects.filter(user=user, trial=trial, role=Role.READER,
                                     site=site).exists()
    assert set(AuditEvent.objects.filter(object_id=str(user.pk)).values_list(
        "action", flat=True)) >= {"account.invited", "account.password_set"}
