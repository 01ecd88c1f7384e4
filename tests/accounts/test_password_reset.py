""""Forgot your password?": Django's reset flow on the site's pages, the link from
``SITE_URL``, the same answer whether or not the e-mail is known, audited when a password is
set; it lifts the account's sign-in lockout, and a person with two-factor sign-in still gives
the code afterwards."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import devices, passwords
from tests.support.factories import PASSWORD, UserFactory
from trial import people
from trial.models import AuditEvent

from .support import SITE_URL, link_in, path_of

pytestmark = pytest.mark.django_db
RESET = "/accounts/password/reset/"
NEW_PASSWORD = "ochre-kestrel-tides-41"


def ask(client: Client, email: str):
    return client.post(RESET, {"email": email}, follow=True)


def set_password(link: str, password: str = NEW_PASSWORD):
    """Follow the link and type ``password`` twice (an invalid link: its page)."""
    client = Client()
    opened = client.get(path_of(link), follow=True)
    if not opened.redirect_chain:
        return opened
    return client.post(opened.redirect_chain[-1][0],
                       {"new_password1": password, "new_password2": password}, follow=True)


def page_text(response) -> str:
    html = response.content.decode()
    return re.sub(r'(name="csrf(?:middlewaretoken|-token)" (?:value|content)=")[^"]*', r"\1",
                  html)


def sign_in(client: Client, username: str, password: str, url: str = "/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def test_the_sign_in_pages_offer_it(world) -> None:
    site = Client().get("/accounts/login/").content.decode()
    assert f'href="{RESET}" id="forgot-password">Forgot your password?' in site
    admin = Client().get("/admin/login/").content.decode()
    assert 'href="/admin/password_reset/"' in admin  # Django's admin shows it for this route
    assert Client().get("/admin/password_reset/").url == RESET
    page = Client().get(RESET)
    assert page.status_code == 200
    assert "site.css" in page.content.decode()  # the site's pages, not the admin's


def test_a_known_email_gets_a_link_from_site_url(world) -> None:
    done = ask(Client(), world.reader_a.email.upper())
    assert done.redirect_chain[-1][0] == reverse("password_reset_done")
    [message] = mail.outbox
    assert message.to == [world.reader_a.email]
    link = link_in(message)
    assert link.startswith(f"{SITE_URL}/accounts/password/reset/")
    assert "testserver" not in message.body  # never the host the request named
    assert "3 days" in message.body and "reader.a" in message.body
    assert not message.alternatives


def test_an_unknown_email_gets_the_same_answer_and_nothing_is_sent(world) -> None:
    known = ask(Client(), world.reader_a.email)
    mail.outbox.clear()
    unknown = ask(Client(), "nobody@example.org")
    assert mail.outbox == []
    assert unknown.redirect_chain == known.redirect_chain
    assert page_text(unknown) == page_text(known)
    assert 'id="reset-sent"' in page_text(unknown)


def test_the_link_sets_a_password_with_the_validators_once(world) -> None:
    ask(Client(), world.reader_a.email)
    link = link_in(mail.outbox[-1])
    client = Client()
    form_url = client.get(path_of(link), follow=True).redirect_chain[-1][0]
    weak = client.post(form_url, {"new_password1": "98127634", "new_password2": "98127634"})
    assert "too short" in weak.content.decode() and "entirely numeric" in weak.content.decode()
    done = client.post(form_url, {"new_password1": NEW_PASSWORD,
                                  "new_password2": NEW_PASSWORD}, follow=True)
    assert 'id="password-set"' in done.content.decode()
    world.reader_a.refresh_from_db()
    assert world.reader_a.check_password(NEW_PASSWORD)
    assert not sign_in(Client(), "reader.a", PASSWORD).wsgi_request.user.is_authenticated
    event = AuditEvent.objects.get(action="account.password_set")
    assert event.actor == world.reader_a and event.trial == world.a
    assert event.after == {"username": "reader.a", "through": "reset",
                           "lockout_attempts_removed": 0}
    again = set_password(link, "another-long-passphrase-9")
    assert 'id="link-invalid"' in again.content.decode()


def test_one_event_per_trial_of_the_person(world) -> None:
    ask(Client(), world.shared.email)
    set_password(link_in(mail.outbox[-1]))
    events = AuditEvent.objects.filter(action="account.password_set")
    assert {e.trial for e in events} == {world.a, world.b}


def test_a_deactivated_account_gets_no_link_and_its_link_stops_working(world) -> None:
    ask(Client(), world.reader_a.email)
    link = link_in(mail.outbox[-1])
    people.deactivate(world.reader_a, by=world.coord_a)
    mail.outbox.clear()
    answer = ask(Client(), world.reader_a.email)
    assert mail.outbox == [] and 'id="reset-sent"' in page_text(answer)
    assert 'id="link-invalid"' in set_password(link).content.decode()


def test_someone_who_never_chose_a_password_can_ask(world) -> None:
    """An invitation's link lost or expired: "Forgot your password?" sends a new one."""
    user = UserFactory(username="invited.late", email="late@example.org")
    user.set_unusable_password()
    user.save()
    ask(Client(), "late@example.org")
    assert 'id="password-set"' in set_password(link_in(mail.outbox[-1])).content.decode()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_a_locked_out_account_is_unlocked_by_a_new_password(world) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "reader.a", "wrong-password-x")
    assert sign_in(Client(REMOTE_ADDR="10.1.1.1"), "reader.a", PASSWORD).status_code == 429
    ask(Client(), world.reader_a.email)  # the reset pages are open while locked
    assert 'id="password-set"' in set_password(link_in(mail.outbox[-1])).content.decode()
    event = AuditEvent.objects.get(action="account.password_set")
    assert event.after["lockout_attempts_removed"] >= 1
    fresh = Client(REMOTE_ADDR="10.1.1.1")
    sign_in(fresh, "reader.a", NEW_PASSWORD)
    assert fresh.session["_auth_user_id"] == str(world.reader_a.pk)


def test_two_factor_is_still_asked_after_a_reset(world, settings) -> None:
    settings.TWO_FACTOR_ENFORCED = True
    settings.DEMO_MODE = False
    TOTPDevice.objects.create(user=world.coord_a, name=devices.AUTHENTICATOR, confirmed=True)
    ask(Client(), world.coord_a.email)
    assert 'id="password-set"' in set_password(link_in(mail.outbox[-1])).content.decode()
    client = Client()
    signed = sign_in(client, "coord.a", NEW_PASSWORD, url="/admin/login/?next=/admin/")
    assert signed.status_code == 302
    admin = client.get("/admin/")
    assert admin.status_code == 302
    assert admin.url.startswith("/accounts/two-factor/verify/")
    assert not client.session.get("otp_device_id")


def test_the_validity_in_words_follows_the_setting(settings) -> None:
    assert passwords.valid_for() == "3 days"
    settings.PASSWORD_RESET_TIMEOUT = 3600
    assert passwords.valid_for() == "1 hour"
    settings.PASSWORD_RESET_TIMEOUT = 90 * 60
    assert passwords.valid_for() == "90 minutes"
