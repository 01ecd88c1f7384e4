"""Hole 5 of the security audit: 30 wrong passwords and then the right one still signed in,
on the site and in the admin. Now an account, and an address, is locked after
AXES_FAILURE_LIMIT failures (django-axes), with a clear page; a coordinator unlocks it; both
are audit events."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.support.factories import PASSWORD, MembershipFactory, TrialFactory, UserFactory
from trial.models import AuditEvent, Role

pytestmark = pytest.mark.django_db
SITE, ADMIN = "/accounts/login/", "/admin/login/"


def sign_in(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", [SITE, ADMIN])
def test_wrong_passwords_lock_the_account_even_against_the_right_one(url: str) -> None:
    user = UserFactory(username="reader.one", is_staff=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, url, "reader.one", "wrong-password-x")
    locked = sign_in(client, url, "reader.one", PASSWORD)
    assert locked.status_code == 429 and not signed_in(client)
    assert "Sign-in locked" in locked.content.decode()
    assert AuditEvent.objects.filter(action="account.locked_out",
                                     object_id=str(user.pk)).exists()


def test_an_address_that_guesses_many_accounts_is_locked_for_all() -> None:
    victim = UserFactory(username="senior.two")
    client = Client(REMOTE_ADDR="10.9.8.7")
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, SITE, f"guess{n}", "wrong-password-x")
    assert sign_in(client, SITE, victim.username, PASSWORD).status_code == 429
    elsewhere = Client(REMOTE_ADDR="10.9.8.8")  # the account itself is not locked
    sign_in(elsewhere, SITE, victim.username, PASSWORD)
    assert signed_in(elsewhere)


def test_a_coordinator_unlocks_a_member_and_it_is_audited() -> None:
    trial = TrialFactory(slug="lock")
    coordinator = MembershipFactory(trial=trial, role=Role.COORDINATOR,
                                    user__is_staff=True).user
    reader = MembershipFactory(trial=trial, role=Role.READER, user__username="reader.three")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, SITE, "reader.three", "wrong-password-x")
    assert sign_in(client, SITE, "reader.three", PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(coordinator)
    done = admin.post(reverse("admin:trial_membership_changelist"), {
        "action": "unlock_sign_in", "_selected_action": [reader.pk]}, follow=True)
    assert "Sign-in unlocked: 1." in done.content.decode()
    event = AuditEvent.objects.get(action="account.unlocked")
    assert event.actor == coordinator and event.trial == trial
    sign_in(client, SITE, "reader.three", PASSWORD)
    assert signed_in(client)


def test_behind_the_proxy_a_lockout_by_address_hits_the_client_not_the_proxy(settings) -> None:
    """With AXES_PROXY_COUNT=1 (the compose stack's nginx) every request comes from nginx's
    address: the client's is the last one of X-Forwarded-For (nginx appends it); what the
    client put further left is ignored."""
    settings.PROXY_COUNT = 1
    victim = UserFactory(username="senior.four")
    via_proxy = {"REMOTE_ADDR": "172.18.0.5"}
    guesser = Client(**via_proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(guesser, SITE, f"guess{n}", "wrong-password-x")
    assert sign_in(guesser, SITE, victim.username, PASSWORD).status_code == 429
    # A forged left-most address does not get the guesser out of the lock...
    forged = Client(**via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.7")
    assert sign_in(forged, SITE, victim.username, PASSWORD).status_code == 429
    # ...and another client behind the same proxy signs in.
    colleague = Client(**via_proxy, HTTP_X_FORWARDED_FOR="198.51.100.8")
    sign_in(colleague, SITE, victim.username, PASSWORD)
    assert signed_in(colleague)


@pytest.mark.parametrize(("count", "remote", "forwarded", "expected"), [
    (0, "10.0.0.1", "198.51.100.7", "10.0.0.1"),  # no proxy: the header is the client's
    (1, "10.0.0.1", "198.51.100.7", "198.51.100.7"),
    (1, "10.0.0.1", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
    (2, "10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
    (2, "10.0.0.1", "198.51.100.7", "10.0.0.1"),  # fewer than the proxies: not through them
    (1, "10.0.0.1", "not-an-address", "10.0.0.1"),
    (1, "10.0.0.1", "", "10.0.0.1"),
])
def test_the_client_address_is_the_nth_from_the_right(settings, count, remote, forwarded,
                                                       expected) -> None:
    from django.test import RequestFactory

    from accounts.client_ip import client_ip

    settings.PROXY_COUNT = count
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
