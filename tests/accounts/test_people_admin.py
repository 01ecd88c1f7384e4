"""A coordinator sees and manages only their trials' people: the *Add membership* drop-down,
the *People* page (roles in their trials only, last sign-in), *Deactivate* and *Reactivate*
(audited; refused for oneself, the last active coordinator of a trial, a superuser, and a
person who also belongs to a trial the coordinator does not run). A deactivated person cannot
sign in, their session ends, and their records stay."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reader.models import Reading
from tests.support.factories import PASSWORD, CaseFactory, MembershipFactory, UserFactory
from trial import people
from trial.errors import Conflict
from trial.models import Arm, Assignment, AuditEvent, Membership, Role

pytestmark = pytest.mark.django_db
ADD_MEMBERSHIP = reverse("admin:trial_membership_add")
PEOPLE = reverse("admin:accounts_person_changelist")


def user_choices(client: Client) -> set[str]:
    form = client.get(ADD_MEMBERSHIP).context["adminform"].form
    return {u.username for u in form.fields["user"].queryset}


def run(client: Client, action: str, *users):
    return client.post(PEOPLE, {"action": action, "_selected_action": [u.pk for u in users]},
                       follow=True)


def test_the_membership_drop_down_lists_only_the_coordinators_people(world) -> None:
    choices = user_choices(world.client(world.coord_a))
    assert choices == {"coord.a", "reader.a", "shared.reader"}
    assert "reader.bravo-only" not in choices and "coord.b" not in choices
    html = world.client(world.coord_a).get(ADD_MEMBERSHIP).content.decode()
    assert "reader.bravo-only" not in html and "coord.b" not in html
    assert "Invite a person" in html  # the help text says where new people come from
    assert {"reader.bravo-only", "coord.b", "root"} <= user_choices(world.client(world.root))


def test_another_trials_person_cannot_be_posted_into_the_form(world) -> None:
    refused = world.client(world.coord_a).post(ADD_MEMBERSHIP, {
        "trial": world.a.pk, "user": world.reader_b.pk, "role": Role.SENIOR})
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()
    assert not Membership.objects.filter(user=world.reader_b, trial=world.a).exists()


def test_the_people_page_shows_the_coordinators_people_and_their_roles_there(world) -> None:
    when = timezone.now()
    world.reader_a.last_login = when
    world.reader_a.save()
    page = world.client(world.coord_a).get(PEOPLE)
    assert page.status_code == 200
    listed = {p.username for p in page.context["cl"].result_list}
    assert listed == {"coord.a", "reader.a", "shared.reader"}
    html = page.content.decode()
    assert "Reader of Trial Alpha (A1)" in html
    assert "Trial Bravo" not in html and "(B1)" not in html  # not even the shared one's role
    assert "reader.bravo-only" not in html
    found = next(p for p in page.context["cl"].result_list if p.username == "reader.a")
    assert found.last_login == when
    assert "Deactivate" in html and "Reactivate" in html
    assert "Add person" not in html  # people come by invitation
    everyone = {p.username for p in
                world.client(world.root).get(PEOPLE).context["cl"].result_list}
    assert {"reader.bravo-only", "coord.b", "root"} <= everyone


def test_the_people_page_filters_and_refuses_other_trials(world) -> None:
    client = world.client(world.coord_a)
    by_b = client.get(f"{PEOPLE}?trial={world.b.pk}")  # not one of theirs: ignored
    assert "reader.bravo-only" not in by_b.content.decode()
    detail = reverse("admin:accounts_person_change", args=[world.reader_b.pk])
    assert client.get(detail).status_code == 403
    own = client.get(reverse("admin:accounts_person_change", args=[world.reader_a.pk]))
    assert own.status_code == 200 and "Reader of Trial Alpha" in own.content.decode()
    readers_only = client.get(f"{PEOPLE}?role=reader").context["cl"].result_list
    assert {p.username for p in readers_only} == {"reader.a", "shared.reader"}
    world.reader_a.is_staff = True
    world.reader_a.save()
    assert world.client(world.reader_a).get(PEOPLE).status_code == 403


def _reading(member: Membership) -> Reading:
    case = CaseFactory(trial=member.trial, site=member.site)
    assignment = Assignment.objects.create(case=case, reader=member, arm=Arm.SCP, position=1)
    now = timezone.now()
    return Reading.objects.create(assignment=assignment, started_from=Reading.Start.BLANK,
                                  opened_at=now, last_event_at=now)


def test_deactivation_keeps_the_records_and_blocks_sign_in(world) -> None:
    member = Membership.objects.get(user=world.reader_a)
    reading = _reading(member)
    session = Client()
    session.force_login(world.reader_a)
    assert session.get("/").status_code == 200

    done = run(world.client(world.coord_a), "deactivate", world.reader_a)
    assert "Deactivated: 1." in done.content.decode()
    world.reader_a.refresh_from_db()
    assert not world.reader_a.is_active
    assert Reading.objects.filter(pk=reading.pk).exists()
    assert Membership.objects.filter(pk=member.pk).exists()
    event = AuditEvent.objects.get(action="account.deactivated")
    assert event.actor == world.coord_a and event.trial == world.a
    assert event.object_type == "auth.User" and event.object_id == str(world.reader_a.pk)

    assert session.get("/").status_code == 302  # the open session is over
    fresh = Client()
    fresh.post("/accounts/login/", {"username": "reader.a", "password": PASSWORD})
    assert "_auth_user_id" not in fresh.session
    assert "reader.a" not in user_choices(world.client(world.coord_a))

    back = run(world.client(world.coord_a), "reactivate", world.reader_a)
    assert "Reactivated: 1." in back.content.decode()
    assert AuditEvent.objects.filter(action="account.reactivated", actor=world.coord_a,
                                     trial=world.a).exists()
    fresh.post("/accounts/login/", {"username": "reader.a", "password": PASSWORD})
    assert fresh.session["_auth_user_id"] == str(world.reader_a.pk)


def test_nobody_deactivates_themselves(world) -> None:
    done = run(world.client(world.coord_a), "deactivate", world.coord_a)
    assert "You cannot deactivate your own account." in done.content.decode()
    world.coord_a.refresh_from_db()
    assert world.coord_a.is_active
    with pytest.raises(people.NotYours):
        people.deactivate(world.root, by=world.root)


def test_the_last_active_coordinator_stays(world) -> None:
    with pytest.raises(Conflict, match="last active coordinator of Trial Alpha"):
        people.deactivate(world.coord_a, by=world.root)
    second = UserFactory(username="coord.a2", is_staff=True)
    MembershipFactory(trial=world.a, user=second, role=Role.COORDINATOR, site=world.site_a)
    done = run(world.client(world.coord_a), "deactivate", second)
    assert "Deactivated: 1." in done.content.decode()
    with pytest.raises(Conflict, match="last active coordinator"):  # the other one is off
        people.deactivate(world.coord_a, by=world.root)
    people.reactivate(second, by=world.root)
    people.deactivate(world.coord_a, by=second)  # now one active coordinator is left
    assert not type(world.coord_a).objects.get(pk=world.coord_a.pk).is_active


def test_a_person_shared_with_another_trial_is_not_the_coordinators_to_switch_off(
        world) -> None:
    done = run(world.client(world.coord_a), "deactivate", world.shared)
    assert "also has a role in a trial you do not coordinate" in done.content.decode()
    world.shared.refresh_from_db()
    assert world.shared.is_active
    assert not AuditEvent.objects.filter(action="account.deactivated").exists()
    # a superuser may; one event per trial of the person
    people.deactivate(world.shared, by=world.root)
    assert {e.trial for e in AuditEvent.objects.filter(action="account.deactivated")} == {
        world.a, world.b}
    with pytest.raises(people.NotYours):
        people.reactivate(world.shared, by=world.coord_a)


def test_a_coordinator_never_switches_off_a_superuser_or_a_stranger(world) -> None:
    MembershipFactory(trial=world.a, user=world.root, role=Role.RATER, site=None)
    with pytest.raises(people.NotYours, match="superuser"):
        people.deactivate(world.root, by=world.coord_a)
    with pytest.raises(people.NotYours, match="no role in a trial you coordinate"):
        people.deactivate(world.reader_b, by=world.coord_a)
    done = run(world.client(world.coord_a), "deactivate", world.reader_b)  # not even listed
    assert not done.context or "Deactivated" not in done.content.decode()
    world.reader_b.refresh_from_db()
    assert world.reader_b.is_active


def test_the_people_page_says_whose_account_is_the_coordinators(world) -> None:
    page = world.client(world.coord_a).get(PEOPLE)
    rows = {p.username: p for p in page.context["cl"].result_list}
    managed = page.context["cl"].list_display[-1]
    assert managed(rows["reader.a"]) is True
    assert managed(rows["shared.reader"]) is False
    assert managed(rows["coord.a"]) is False
