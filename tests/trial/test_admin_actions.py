"""What the coordinator's admin does: tools and actions call the services, errors are messages."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.support.factories import CaseFactory, MembershipFactory, SiteFactory, UserFactory
from tests.support.trial_world import World
from trial.models import AuditEvent, Case, Membership, RandomizationList, Role, Trial


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def trial_page(world: World, client: Client | None = None) -> str:
    client = client or world.client("coordinator")
    return client.get(reverse("admin:trial_trial_change", args=[world.trial.pk])).content.decode()


def test_allocate_action_allocates_a_reader_and_the_trial_page_shows_it(world: World) -> None:
    client = world.client("coordinator")
    assert "reader2-a" not in trial_page(world, client)
    response = client.post(reverse("admin:trial_membership_changelist"), {
        "action": "allocate_selected", "_selected_action": [world.reader2.pk],
    }, follow=True)
    assert ("success", "Readers allocated: 1.") in messages_of(response)
    world.reader2.refresh_from_db()
    arm = Membership.objects.get(pk=world.reader2.pk).arm
    assert arm in ("ai_assisted", "scp")
    html = trial_page(world, client)
    assert "reader2-a" in html and html.count('data-arm="') == 2
    assert f'data-arm="{arm}"' in html
    assert f"2 of {world.rlist.slots.count()} slots allocated" in html
    assert world.rlist.commitment in html


def test_allocating_an_allocated_reader_is_an_error_message_not_a_traceback(world) -> None:
    response = world.client("coordinator").post(reverse("admin:trial_membership_changelist"), {
        "action": "allocate_selected", "_selected_action": [world.reader.pk],
    }, follow=True)
    assert response.status_code == 200
    (level, text), = messages_of(response)
    assert level == "error" and "already allocated" in text


def test_trial_page_has_the_tools_and_the_dicom_import_link(world: World) -> None:
    html = trial_page(world)
    for name in ("generate_list", "allocate_all", "assign", "import_list"):
        assert reverse(f"admin:trial_trial_{name}", args=[world.trial.pk]) in html
    assert reverse("admin:trial_import", args=[world.trial.pk]) in html
    assert "csrfmiddlewaretoken" in html


def test_tool_posts_need_the_csrf_token(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["coordinator"])
    url = reverse("admin:trial_trial_allocate_all", args=[world.trial.pk])
    assert client.post(url).status_code == 403
    assert world.reader2.__class__.objects.get(pk=world.reader2.pk).arm is None


def test_generate_list_button_on_a_trial_without_list(world: World) -> None:
    client = world.client("other_coordinator")
    url = reverse("admin:trial_trial_generate_list", args=[world.other.pk])
    unconfirmed = client.post(url, follow=True)  # irreversible: the first press only warns
    assert not RandomizationList.objects.filter(trial=world.other).exists()
    assert b"I confirm" in unconfirmed.content
    response = client.post(url, {"confirm": "on"}, follow=True)
    (level, text), = messages_of(response)
    assert level == "success" and "sealed slots" in text
    rlist = RandomizationList.objects.get(trial=world.other)
    assert str(rlist.seed) not in response.content.decode()
    again = client.post(url, {"confirm": "on"}, follow=True)
    assert messages_of(again)[0][0] == "error" and "already has" in messages_of(again)[0][1]


def test_import_list_view_explains_a_refused_list_and_stores_a_good_one(world) -> None:
    client = world.client("other_coordinator")
    url = reverse("admin:trial_trial_import_list", args=[world.other.pk])
    bad = SimpleUploadedFile("list.csv", b"position,arm\n1,scp\n1,placebo\n")
    response = client.post(url, {"csv_file": bad})
    assert response.status_code == 200
    html = response.content.decode()
    assert "duplicate position 1" in html and "unknown arm" in html
    assert not RandomizationList.objects.filter(trial=world.other).exists()
    good = SimpleUploadedFile("list.csv", b"position,arm\n1,scp\n2,ai_assisted\n")
    response = client.post(url, {"csv_file": good, "expected_count": 2})
    assert response.status_code == 302
    assert RandomizationList.objects.get(trial=world.other).slots.count() == 2


def test_case_actions_record_consent_screen_and_refuse_enrolment_with_a_message(world) -> None:
    client = world.client("coordinator")
    changelist = reverse("admin:trial_case_changelist")
    response = client.post(changelist, {"action": "record_consent_action",
                                        "_selected_action": [world.case.pk]}, follow=True)
    assert ("success", "Consent recorded: 1.") in messages_of(response)
    response = client.post(changelist, {"action": "enrol_action",
                                        "_selected_action": [world.case.pk]}, follow=True)
    (level, text), = messages_of(response)
    assert level == "error" and "not been screened" in text
    screen = reverse("admin:trial_case_screen", args=[world.case.pk])
    assert "Suspected disease" in client.get(screen).content.decode()
    response = client.post(screen, {"suspected_disease": "on"}, follow=True)
    assert Case.objects.get(pk=world.case.pk).eligibility_answers == {"suspected_disease": True}
    response = client.post(changelist, {"action": "enrol_action",
                                        "_selected_action": [world.case.pk]}, follow=True)
    assert ("success", "Cases enrolled: 1.") in messages_of(response)
    assert Case.objects.get(pk=world.case.pk).status == Case.Status.ENROLLED


def test_exclude_action_asks_for_a_reason_then_excludes(world: World) -> None:
    client = world.client("coordinator")
    changelist = reverse("admin:trial_case_changelist")
    form = client.post(changelist, {"action": "exclude_action", "index": 0,
                                    "_selected_action": [world.case.pk]})
    assert form.status_code == 200 and "CONSORT" in form.content.decode()
    response = client.post(changelist, {"action": "exclude_action", "apply": "1",
                                        "_selected_action": [world.case.pk],
                                        "reason": "Severe motion artefact"}, follow=True)
    assert ("success", "Cases excluded: 1.") in messages_of(response)
    case = Case.objects.get(pk=world.case.pk)
    assert case.status == Case.Status.EXCLUDED and case.exclusion_reason == "Severe motion artefact"


def test_an_edit_in_the_admin_is_audited_without_secrets(world: World) -> None:
    client = world.client("coordinator")
    url = reverse("admin:trial_membership_change", args=[world.reader2.pk])
    response = client.post(url, {"trial": world.trial.pk, "user": world.reader2.user.pk,
                                 "role": Role.READER, "site": world.site.pk,
                                 "years_experience": 9})
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="membership.changed").get()
    assert event.before["years_experience"] == 5 and event.after["years_experience"] == 9
    assert event.actor == world.users["coordinator"]


def test_an_allocated_readers_identity_is_read_only(world: World) -> None:
    html = world.client("coordinator").get(
        reverse("admin:trial_membership_change", args=[world.reader.pk])
    ).content.decode()
    assert 'name="role"' not in html and 'name="years_experience"' in html


def test_a_coordinator_cannot_pick_another_trials_site_or_trial(world: World) -> None:
    html = world.client("coordinator").get(reverse("admin:trial_case_add")).content.decode()
    assert "Trial A" in html and "Trial B" not in html and "B1 –" not in html


@pytest.mark.parametrize("role", ["coordinator", "superuser"])
def test_audit_events_cannot_be_changed_or_deleted_even_by_a_superuser(world, role) -> None:
    client = world.client(role)
    change = reverse("admin:trial_auditevent_change", args=[world.event.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(change, {"action": "edited"}).status_code == 403
    delete = reverse("admin:trial_auditevent_delete", args=[world.event.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:trial_auditevent_add")).status_code == 403
    changelist = client.get(reverse("admin:trial_auditevent_changelist")).content.decode()
    assert "delete_selected" not in changelist
    bulk = client.post(reverse("admin:trial_auditevent_changelist"), {
        "action": "delete_selected", "_selected_action": [world.event.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)
    assert AuditEvent.objects.filter(pk=world.event.pk, action="test.event").exists()


def test_the_seed_and_slots_are_revealed_only_once_the_trial_is_locked(world: World) -> None:
    from tests.support.trial_world import SEED

    client = world.client("superuser")
    url = reverse("admin:trial_randomizationlist_change", args=[world.rlist.pk])
    before = client.get(url).content.decode()
    assert str(SEED) not in before and world.rlist.commitment in before
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    after = client.get(url).content.decode()
    assert str(SEED) in after
    assert after.count('data-arm="') == world.rlist.slots.count()


def test_a_superuser_may_add_a_trial_and_a_coordinator_may_not(world: World) -> None:
    url = reverse("admin:trial_trial_add")
    assert world.client("coordinator").get(url).status_code == 403
    assert world.client("superuser").get(url).status_code == 200


def test_a_stranger_site_cannot_be_given_to_a_case(world: World) -> None:
    other_site = SiteFactory(trial=world.other, code="B9")
    response = world.client("superuser").post(reverse("admin:trial_case_add"), {
        "trial": world.trial.pk, "site": other_site.pk, "case_id": "X-1", "sex": "U",
    })
    assert response.status_code == 200
    assert "This site belongs to another trial." in response.content.decode()
    assert not Case.objects.filter(case_id="X-1").exists()


def test_only_a_screened_case_may_be_deleted(world: World) -> None:
    client = world.client("coordinator")
    enrolled = CaseFactory(trial=world.trial, site=world.site, case_id="A-0009")
    Case.objects.filter(pk=enrolled.pk).update(status=Case.Status.ENROLLED)
    assert client.get(reverse("admin:trial_case_delete", args=[enrolled.pk])).status_code == 403
    fresh = CaseFactory(trial=world.trial, site=world.site, case_id="A-0010")
    response = client.post(reverse("admin:trial_case_delete", args=[fresh.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Case.objects.filter(pk=fresh.pk).exists()
    assert AuditEvent.objects.filter(action="case.deleted", object_id=str(fresh.pk)).exists()


def test_a_reader_added_late_shows_no_arm_until_allocated(world: World) -> None:
    late = MembershipFactory(trial=world.trial, user=UserFactory(username="late-reader"),
                             role=Role.READER, site=world.site)
    html = world.client("coordinator").get(
        reverse("admin:trial_membership_changelist")).content.decode()
    assert "late-reader" in html and html.count('data-arm="') == 1
    assert late.arm is None


def test_a_locked_trials_page_shows_no_tool_that_would_only_be_refused(world: World) -> None:
    url = reverse("admin:trial_trial_change", args=[world.trial.pk])
    assert 'class="object-tool"' in world.client("coordinator").get(url).content.decode()
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    assert 'class="object-tool"' not in world.client("coordinator").get(url).content.decode()
