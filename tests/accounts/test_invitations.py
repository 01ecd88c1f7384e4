"""Inviting people (admin, *Invite a person*): a new account or the existing one with that
e-mail, a membership, a plain-text e-mail with a one-time link from ``SITE_URL``, audited;
following the link sets a password (the validators apply), and the person signs in.

A coordinator invites only into their own trials; an expert rater's e-mail never names the
trial; nothing is kept when anything is refused, the e-mail included.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import invitations
from trial import people
from trial.errors import Conflict, Invalid
from trial.lifecycle import TrialLocked
from trial.models import AuditEvent, Membership, Role, Trial

from .support import SITE_URL, link_in, path_of

pytestmark = pytest.mark.django_db
INVITE = "/admin/accounts/person/invite/"
NEW_PASSWORD = "ochre-kestrel-tides-41"
User = get_user_model()


def invite_form(trial, email: str, role: str = Role.READER, site=None, **extra) -> dict:
    return {"trial": trial.pk, "email": email, "role": role,
            "site": site.pk if site is not None else "", "first_name": "Anna",
            "last_name": "Berg", "years_experience": 3, **extra}


def test_a_coordinator_invites_a_new_reader(world) -> None:
    client = world.client(world.coord_a)
    page = client.get(INVITE)
    assert page.status_code == 200
    done = client.post(INVITE, invite_form(world.a, "Anna.Berg@Hospital.example",
                                           site=world.site_a), follow=True)
    assert done.redirect_chain[-1][0] == reverse("admin:accounts_person_changelist")
    assert "Invited: anna.berg is reader of Trial Alpha" in done.content.decode()

    user = User.objects.get(email__iexact="anna.berg@hospital.example")
    assert user.username == "anna.berg"
    assert (user.first_name, user.last_name) == ("Anna", "Berg")
    assert not user.has_usable_password() and user.is_active and not user.is_staff
    member = Membership.objects.get(user=user)
    assert (member.trial, member.role, member.site, member.years_experience) == (
        world.a, Role.READER, world.site_a, 3)

    [message] = mail.outbox
    assert message.to == [user.email]
    assert "choose your password" in message.subject
    assert not message.alternatives  # plain text only
    link = link_in(message)
    assert link.startswith(f"{SITE_URL}/accounts/welcome/")
    body = message.body.replace(link, "")  # the token's random letters could spell anything
    assert "Trial Alpha" in body and "reader" in body and "anna.berg" in body
    assert "3 days" in body  # PASSWORD_RESET_TIMEOUT, Django's default
    assert f"{SITE_URL}/accounts/login/" in body
    for secret in ("A1", "ai_assisted", "AI-assisted", "scp", "case"):
        assert secret not in body, secret

    invited = AuditEvent.objects.get(action="account.invited")
    assert invited.actor == world.coord_a and invited.trial == world.a
    assert invited.object_id == str(user.pk)
    assert invited.after | {"email": None} == {
        "username": "anna.berg", "email": None, "role": "reader", "site": "A1",
        "new_account": True, "staff_granted": False, "link_sent": True,
        "invited_by": "coord.a"}
    assert AuditEvent.objects.filter(action="membership.created", actor=world.coord_a,
                                     trial=world.a, object_id=str(member.pk)).exists()


def test_the_link_sets_a_password_once_and_the_person_signs_in(world) -> None:
    invitations.invite(trial=world.a, email="anna.berg@example.net", role=Role.READER,
                       site=world.site_a, first_name="Anna", last_name="Berg",
                       by=world.coord_a)
    user = User.objects.get(email="anna.berg@example.net")
    link = link_in(mail.outbox[-1])
    browser = Client()
    page = browser.get(path_of(link), follow=True)
    form_url = page.redirect_chain[-1][0]
    assert form_url.endswith("/set-password/")  # the token leaves the address bar
    assert "Welcome: choose your password" in page.content.decode()
    assert "anna.berg" in page.content.decode()

    for weak in ("short", "password1234", "anna.berg.1"):  # the project's validators
        refused = browser.post(form_url, {"new_password1": weak, "new_password2": weak})
        assert refused.status_code == 200, weak
        assert 'id="password2-problems"' in refused.content.decode(), weak
    user.refresh_from_db()
    assert not user.has_usable_password()

    done = browser.post(form_url, {"new_password1": NEW_PASSWORD,
                                   "new_password2": NEW_PASSWORD}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("password_reset_complete")
    assert "Your password is set" in done.content.decode()
    assert "_auth_user_id" not in browser.session  # not signed in by the link
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(action="account.password_set")
    assert event.actor == user and event.trial == world.a
    assert event.after["through"] == "invitation"

    again = Client().get(path_of(link), follow=True)  # one time only
    assert 'id="link-invalid"' in again.content.decode()

    signed = Client()
    signed.post("/accounts/login/", {"username": "anna.berg", "password": NEW_PASSWORD})
    assert signed.session["_auth_user_id"] == str(user.pk)


def test_a_new_coordinator_gets_staff_and_the_admin_address(world) -> None:
    invitations.invite(trial=world.a, email="co@example.net", role=Role.COORDINATOR,
                       by=world.coord_a)
    user = User.objects.get(email="co@example.net")
    assert user.is_staff and not user.is_superuser
    body = mail.outbox[-1].body
    assert f"{SITE_URL}/admin/" in body
    assert "two-factor" in body  # coordinators must set it up


def test_an_existing_email_gets_the_role_on_its_account(world) -> None:
    """reader.bravo-only (trial B, with a password) is invited into A by A's coordinator."""
    person = world.reader_b
    person.first_name = "Bea"
    person.save()
    client = world.client(world.coord_a)
    done = client.post(INVITE, invite_form(world.a, person.email.upper(), role=Role.SENIOR),
                       follow=True)
    assert "An account with this e-mail existed" in done.content.decode()
    assert User.objects.filter(email__iexact=person.email).count() == 1
    assert Membership.objects.filter(user=person, trial=world.a, role=Role.SENIOR).exists()
    person.refresh_from_db()
    assert person.first_name == "Bea" and person.last_name == ""  # names left as they were
    assert person.has_usable_password()
    [message] = mail.outbox
    assert "new role" in message.subject and "senior radiologist" in message.body
    assert "/accounts/welcome/" not in message.body  # they have a password: no link
    event = AuditEvent.objects.get(action="account.invited")
    assert event.after["new_account"] is False and event.after["link_sent"] is False


def test_an_existing_account_made_coordinator_gets_staff(world) -> None:
    invitations.invite(trial=world.a, email=world.reader_b.email, role=Role.COORDINATOR,
                       by=world.coord_a)
    world.reader_b.refresh_from_db()
    assert world.reader_b.is_staff and not world.reader_b.is_superuser
    assert AuditEvent.objects.get(action="account.invited").after["staff_granted"] is True


def test_an_invitation_not_taken_up_is_sent_again_with_a_new_link(world) -> None:
    invitations.invite(trial=world.a, email="late@example.net", role=Role.READER,
                       site=world.site_a, by=world.coord_a)
    invitations.invite(trial=world.a, email="late@example.net", role=Role.SENIOR,
                       by=world.coord_a)
    assert User.objects.filter(email="late@example.net").count() == 1
    assert "/accounts/welcome/" in link_in(mail.outbox[-1])


def test_user_names_are_unique(world) -> None:
    for domain in ("one.example", "two.example", "three.example"):
        invitations.invite(trial=world.a, email=f"Sam@{domain}", role=Role.RATER,
                           by=world.coord_a)
    assert sorted(User.objects.filter(username__startswith="sam")
                  .values_list("username", flat=True)) == ["sam", "sam2", "sam3"]


def test_a_raters_email_does_not_name_the_trial(world) -> None:
    invitations.invite(trial=world.a, email="rater@example.net", role=Role.RATER,
                       by=world.coord_a)
    message = mail.outbox[-1]
    body = message.body.replace(link_in(message), "")
    assert "Trial Alpha" not in body and "alpha" not in body.lower()
    assert "Trial Alpha" not in message.subject
    assert "blinded rating study" in body


def test_a_coordinator_cannot_invite_into_another_trial(world) -> None:
    client = world.client(world.coord_a)
    page = client.get(INVITE)
    assert "Trial Bravo" not in page.content.decode()  # neither the trial nor its sites
    refused = client.post(INVITE, invite_form(world.b, "x@example.net", site=world.site_b))
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()
    with pytest.raises(people.NotYours):
        invitations.invite(trial=world.b, email="x@example.net", role=Role.READER,
                           site=world.site_b, by=world.coord_a)
    assert not User.objects.filter(email="x@example.net").exists()
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action="account.invited").exists()


def test_a_reader_only_or_a_non_coordinator_is_refused_the_page(world) -> None:
    world.reader_a.is_staff = True
    world.reader_a.save()
    assert world.client(world.reader_a).get(INVITE).status_code == 403
    assert Client().get(INVITE).status_code == 302  # to the admin's sign-in


def test_a_superuser_invites_into_any_trial(world) -> None:
    invitations.invite(trial=world.b, email="any@example.net", role=Role.STATISTICIAN,
                       by=world.root)
    assert Membership.objects.filter(user__email="any@example.net", trial=world.b).exists()


def test_a_reader_needs_a_site_of_that_trial(world) -> None:
    client = world.client(world.root)
    no_site = client.post(INVITE, invite_form(world.a, "r1@example.net"))
    assert "needs a site" in no_site.content.decode()
    wrong = client.post(INVITE, invite_form(world.a, "r1@example.net", site=world.site_b))
    assert "belongs to another trial" in wrong.content.decode()
    with pytest.raises(Invalid):
        invitations.invite(trial=world.a, email="r1@example.net", role=Role.READER,
                           by=world.root)
    assert not User.objects.filter(email="r1@example.net").exists() and mail.outbox == []


def test_a_role_held_already_is_refused_and_nothing_is_sent(world) -> None:
    client = world.client(world.coord_a)
    done = client.post(INVITE, invite_form(world.a, world.reader_a.email, site=world.site_a),
                       follow=True)
    assert "is reader of Trial Alpha already" in done.content.decode()
    assert mail.outbox == []


def test_a_locked_trial_takes_nobody(world) -> None:
    Trial.objects.filter(pk=world.a.pk).update(status=Trial.Status.LOCKED)
    with pytest.raises(TrialLocked):
        invitations.invite(trial=world.a, email="late@example.net", role=Role.RATER,
                           by=world.coord_a)
    page = world.client(world.coord_a).get(INVITE)
    assert "Trial Alpha" not in page.content.decode()  # not offered


def test_a_deactivated_account_is_not_reused(world) -> None:
    people.deactivate(world.reader_b, by=world.root)
    with pytest.raises(Conflict, match="deactivated"):
        invitations.invite(trial=world.a, email=world.reader_b.email, role=Role.SENIOR,
                           by=world.coord_a)
    assert not Membership.objects.filter(user=world.reader_b, trial=world.a).exists()


def test_an_email_that_cannot_be_sent_invites_nobody(world, settings, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr(invitations, "send_mail", refuse)
    client = world.client(world.coord_a)
    done = client.post(INVITE, invite_form(world.a, "nomail@example.net", site=world.site_a),
                       follow=True)
    assert "could not be sent" in done.content.decode()
    assert not User.objects.filter(email="nomail@example.net").exists()
    assert not AuditEvent.objects.filter(action__in=["account.invited",
                                                     "membership.created"]).exists()


def test_the_memberships_list_has_the_invite_button(world) -> None:
    page = world.client(world.coord_a).get(
        reverse("admin:trial_membership_changelist") + f"?trial__id__exact={world.a.pk}")
    html = page.content.decode()
    assert f'href="{INVITE}?trial={world.a.pk}"' in html and "Invite a person" in html
    people_page = world.client(world.coord_a).get(reverse("admin:accounts_person_changelist"))
    assert "Invite a person" in people_page.content.decode()
    prefilled = world.client(world.coord_a).get(f"{INVITE}?trial={world.a.pk}")
    assert f'<option value="{world.a.pk}" selected>' in prefilled.content.decode()


def test_the_invite_forms_role_is_chosen_never_assumed(db) -> None:
    from accounts.forms import InviteForm
    from tests.support.factories import UserFactory

    form = InviteForm(user=UserFactory())
    assert form.fields["role"].choices[0] == ("", "---------")
    assert 'value="" selected' in str(form["role"])
