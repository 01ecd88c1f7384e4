"""The coordinator's case page: images (thumbnails, viewer), history, eligibility and consent,
the other apps' panels, and the protocol's steps (screen, consent, enrol, assign) as confirmed
POST forms through the services; the trial page's "Assign cases" and "Generate list" confirm."""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from drafting.models import Draft
from reader import reading
from tests.support.campaign_world import build_campaign_world
from tests.support.factories import (
    PASSWORD,
    CriterionFactory,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from tests.support.read_world import build_read_world
from tests.support.trial_world import DRAFT_TEXT, World
from trial import lifecycle
from trial.admin.cases import CaseAdmin
from trial.dicom import thumbnails
from trial.dicom.importer import import_path
from trial.dicom.render import derived_dir
from trial.dicom.synthetic import make_cxr
from trial.models import (
    Arm,
    Assignment,
    AuditEvent,
    Case,
    EligibilityCriterion,
    Membership,
    RandomizationList,
    Role,
    Trial,
)
from trial.randomization import allocate_all, generate_list

HISTORY = "Smoker, 40 pack-years; haemoptysis since March"
ELIGIBLE = {"suspected": "on"}  # the exclusion criterion unticked; consent is not asked
STEPS = ("screen", "consent", "enrol", "assign")


@dataclass
class Flow:
    trial: Trial
    coordinator: object
    cases: list[Case]
    readers: list[Membership]

    @property
    def case(self) -> Case:
        return self.cases[0]

    def client(self) -> Client:
        client = Client()
        client.force_login(self.coordinator)
        return client


def build_flow(folder: Path, *, cases: int = 1, readers_per_arm: int = 2,
               allocate: bool = True) -> Flow:
    """A trial with an inclusion, a consent and an exclusion criterion, allocated readers and
    imported (synthetic) cases with a complete clinical record, not screened yet."""
    trial = TrialFactory(block_sizes=[2])
    site = SiteFactory(trial=trial)
    coordinator = UserFactory(is_staff=True)
    MembershipFactory(trial=trial, user=coordinator, role=Role.COORDINATOR, site=site)
    readers = [MembershipFactory(trial=trial, role=Role.READER, site=site)
               for _ in range(2 * readers_per_arm)]
    CriterionFactory(trial=trial, code="suspected", text="Suspected thoracic disease")
    CriterionFactory(trial=trial, code="informed_consent", text="Written informed consent obtained")
    CriterionFactory(trial=trial, code="poor_image", text="Substandard image",
                     kind=EligibilityCriterion.Kind.EXCLUSION)
    generate_list(trial, by=coordinator, seed_source=lambda: 7)
    if allocate:
        allocate_all(trial, by=coordinator)
    dicom = folder / "dicom"
    dicom.mkdir()
    for i in range(cases):
        make_cxr(dicom / f"{i}.dcm", seed=i, rows=300, columns=240, accession=f"ACC{i}",
                 patient_id=f"P{i}")
    job = import_path(dicom, trial=trial, site=site, by=coordinator)
    assert job.imported == cases, job.report
    Case.objects.filter(trial=trial).update(chief_complaint="Cough", history=HISTORY,
                                            lab_results="CRP 80")
    return Flow(trial=trial, coordinator=coordinator, readers=readers,
                cases=list(Case.objects.filter(trial=trial).order_by("case_id")))


@pytest.fixture
def flow(db, tmp_path) -> Flow:
    return build_flow(tmp_path)


def page_of(client: Client, case: Case) -> str:
    response = client.get(reverse("admin:trial_case_change", args=[case.pk]))
    assert response.status_code == 200
    return response.content.decode()


def step_url(name: str, case: Case) -> str:
    return reverse(f"admin:trial_case_{name}", args=[case.pk])


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def forms_on(html: str) -> list[str]:
    """The steps whose POST form the page shows, in page order."""
    return re.findall(r'data-step-form="(\w+)"', html)


def actions(case: Case) -> list[str]:
    return list(AuditEvent.objects.filter(object_type="trial.Case", object_id=str(case.pk))
                .order_by("pk").values_list("action", flat=True))


def png(response) -> PILImage.Image:
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    data = b"".join(response.streaming_content)  # the test client closes the file then
    return PILImage.open(io.BytesIO(data))


# --- images, history, state -------------------------------------------------------------------

def test_the_page_shows_a_thumbnail_the_viewer_link_and_the_history(flow: Flow) -> None:
    client = flow.client()
    html = page_of(client, flow.case)
    image = flow.case.images.get()
    thumb = reverse("admin:trial_image_thumbnail", args=[image.pk])
    viewer = reverse("reader:image", args=[image.pk])
    assert f'src="{thumb}"' in html and f'href="{viewer}"' in html
    assert "Open in the viewer" in html
    assert HISTORY in html
    assert "Not screened yet." in html and "Not recorded." in html
    # sections in the protocol's order, the other apps' panels after the case's own
    titles = [t for t in re.findall(r"<h2[^>]*>([^<]+)</h2>", html)]
    wanted = ["Images", "Clinical history", "Eligibility and consent", "AI draft", "Readings",
              "Senior review", "Ratings"]
    assert [t for t in titles if t in wanted] == wanted

    picture = png(client.get(thumb))
    assert max(picture.size) == thumbnails.THUMB_SIZE and picture.mode == "L"
    assert picture.size == thumbnails.thumbnail_size(image)
    assert (derived_dir(image) / thumbnails.THUMB_NAME).exists()  # cached next to the viewer's
    assert client.get(viewer).status_code == 200


def test_the_thumbnail_is_made_from_the_viewer_files_never_from_the_dicom(flow: Flow) -> None:
    image = flow.case.images.get()
    client = flow.client()
    first = png(client.get(reverse("admin:trial_image_thumbnail", args=[image.pk])))
    assert len(set(first.tobytes())) > 16  # a picture, not a flat grey
    Path(image.file.path).unlink()  # the DICOM gone: the thumbnail does not need it
    (derived_dir(image) / thumbnails.THUMB_NAME).unlink()
    again = png(client.get(reverse("admin:trial_image_thumbnail", args=[image.pk])))
    assert again.tobytes() == first.tobytes()


def test_an_image_without_viewer_files_says_not_prepared(world: World) -> None:
    client = world.client("coordinator")
    html = page_of(client, world.case)
    assert "not prepared" in html
    assert reverse("admin:trial_image_thumbnail", args=[world.image.pk]) not in html
    response = client.get(reverse("admin:trial_image_thumbnail", args=[world.image.pk]))
    assert response.status_code == 404  # no file decoded, none made


def test_the_thumbnail_is_only_for_the_trials_coordinators(flow: Flow) -> None:
    image = flow.case.images.get()
    url = reverse("admin:trial_image_thumbnail", args=[image.pk])
    stranger = UserFactory(is_staff=True)
    MembershipFactory(trial=TrialFactory(), user=stranger, role=Role.COORDINATOR)
    client = Client()
    client.force_login(stranger)
    assert client.get(url).status_code == 403
    assert client.get(reverse("admin:trial_case_change", args=[flow.case.pk])).status_code == 403
    reader = Client()
    flow.readers[0].user.is_staff = True
    flow.readers[0].user.save()
    reader.force_login(flow.readers[0].user)
    assert reader.get(url).status_code == 403
    assert Client().get(url).status_code == 302  # to the sign-in page


def test_the_image_page_shows_the_thumbnail_and_the_viewer_link(flow: Flow) -> None:
    image = flow.case.images.get()
    response = flow.client().get(reverse("admin:trial_image_change", args=[image.pk]))
    html = response.content.decode()
    assert reverse("admin:trial_image_thumbnail", args=[image.pk]) in html
    assert reverse("reader:image", args=[image.pk]) in html


# --- the protocol's steps ----------------------------------------------------------------------

def test_the_steps_come_in_the_protocols_order_each_when_it_applies(flow: Flow) -> None:
    client, case = flow.client(), flow.case
    html = page_of(client, case)
    assert [html.index(f'data-step="{s}"') for s in STEPS] == sorted(
        html.index(f'data-step="{s}"') for s in STEPS)
    assert forms_on(html) == ["screen"]
    assert 'name="suspected"' in html and 'name="poor_image"' in html
    assert 'name="informed_consent"' not in html  # screening no longer asks for consent
    assert 'id="confirm-screen"' in html and "required" in html

    response = client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"}, follow=True)
    assert ("success", f"{case}: screened, now Screened.") in messages_of(response)
    case.refresh_from_db()
    assert case.eligibility_answers == {"suspected": True, "poor_image": False,
                                        "informed_consent": True}
    assert actions(case)[-1] == "case.screened"
    html = page_of(client, case)
    assert forms_on(html) == ["consent"]
    assert ("Written informed consent obtained: <strong>by the consent step: not recorded yet"
            in html)

    response = client.post(step_url("consent", case), {"confirm": "on"}, follow=True)
    assert messages_of(response)[0][0] == "success"
    case.refresh_from_db()
    assert case.consent_recorded_by == flow.coordinator and case.consent_recorded_at
    assert actions(case)[-1] == "case.consent_recorded"
    html = page_of(client, case)
    assert forms_on(html) == ["enrol"]
    assert f"Recorded by <strong>{flow.coordinator.username}</strong>" in html
    assert ">Enrol</button>" in html and ">Enrol and assign</button>" in html

    response = client.post(step_url("enrol", case), {"confirm": "on"}, follow=True)
    assert ("success", f"{case}: enrolled.") in messages_of(response)
    case.refresh_from_db()
    assert case.status == Case.Status.ENROLLED
    assert actions(case)[-1] == "case.enrolled"
    assert not Assignment.objects.filter(case=case).exists()
    html = page_of(client, case)
    assert forms_on(html) == ["assign", "withdraw"]  # withdrawing: any enrolled case

    response = client.post(step_url("assign", case), {"confirm": "on"}, follow=True)
    assert messages_of(response)[0][0] == "success"
    assert sorted(Assignment.objects.filter(case=case).values_list("arm", flat=True)) == sorted(
        Arm.values)
    assert actions(case)[-2:] == ["case.assigned", "case.assigned"]
    html = page_of(client, case)
    assert forms_on(html) == ["withdraw"]
    assert html.count('data-state="done">') == 4


def test_a_step_without_its_confirmation_does_nothing(flow: Flow) -> None:
    client, case = flow.client(), flow.case
    client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"})
    for name in ("consent", "enrol", "assign"):
        response = client.post(step_url(name, case), {}, follow=True)
        level, text = messages_of(response)[-1]
        assert level == "error" and "tick “I confirm”" in text
    case.refresh_from_db()
    assert case.consent_recorded_at is None and case.status == Case.Status.SCREENED
    assert client.get(step_url("consent", case)).status_code == 405  # POST only


def test_answers_that_exclude_the_case_need_the_confirmation(flow: Flow) -> None:
    client, case = flow.client(), flow.case
    answers = {**ELIGIBLE, "poor_image": "on"}
    response = client.post(step_url("screen", case), answers)
    assert response.status_code == 200
    assert "These answers exclude the case" in response.content.decode()
    case.refresh_from_db()
    assert case.status == Case.Status.SCREENED and not case.eligibility_answers
    response = client.post(step_url("screen", case), {**answers, "confirm": "on"}, follow=True)
    case.refresh_from_db()
    assert case.status == Case.Status.EXCLUDED
    assert "exclusion applies: Substandard image" in case.exclusion_reason
    assert actions(case)[-2:] == ["case.screened", "case.excluded"]
    html = page_of(client, case)
    assert forms_on(html) == [] and "Excluded: exclusion applies" in html


def test_a_refused_step_shows_the_services_reason(flow: Flow) -> None:
    client, case = flow.client(), flow.case
    client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"})
    client.post(step_url("consent", case), {"confirm": "on"})
    Case.objects.filter(pk=case.pk).update(lab_results="")
    assert "Still missing: clinical record: laboratory results is empty" in page_of(client, case)
    response = client.post(step_url("enrol", case), {"confirm": "on"}, follow=True)
    (level, text), = messages_of(response)
    assert level == "error"
    assert "cannot enrol case" in text and "laboratory results is empty" in text
    assert Case.objects.get(pk=case.pk).status == Case.Status.SCREENED
    # the consent cannot be recorded twice: the service's reason again
    response = client.post(step_url("consent", case), {"confirm": "on"}, follow=True)
    assert "already recorded" in messages_of(response)[0][1]


def test_enrol_and_assign_is_both_or_neither(db, tmp_path) -> None:
    flow = build_flow(tmp_path, allocate=False)  # no reader allocated: nobody to assign
    client, case = flow.client(), flow.case
    client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"})
    client.post(step_url("consent", case), {"confirm": "on"})
    response = client.post(step_url("enrol", case), {"confirm": "on", "assign": "1"},
                           follow=True)
    level, text = messages_of(response)[-1]
    assert level == "error" and "no allocated reader" in text
    case.refresh_from_db()
    assert case.status == Case.Status.SCREENED and case.enrolled_at is None
    assert "case.enrolled" not in actions(case)


def test_enrol_and_assign_gives_one_reader_per_arm_balanced(db, tmp_path) -> None:
    flow = build_flow(tmp_path, cases=4)
    client = flow.client()
    for case in flow.cases:
        client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"})
        client.post(step_url("consent", case), {"confirm": "on"})
        response = client.post(step_url("enrol", case), {"confirm": "on", "assign": "1"},
                               follow=True)
        level, text = messages_of(response)[-1]
        assert level == "success" and "enrolled and assigned to" in text
        assert sorted(case.assignments.values_list("arm", flat=True)) == sorted(Arm.values)
        assert actions(case)[-3:] == ["case.enrolled", "case.assigned", "case.assigned"]
    loads = Counter(Assignment.objects.filter(case__trial=flow.trial)
                    .values_list("reader", flat=True))
    assert sorted(loads.values()) == [2, 2, 2, 2]  # 4 cases over 2 readers of each arm
    for reader in Membership.objects.filter(trial=flow.trial, role=Role.READER):
        positions = list(reader.assignments.order_by("position").values_list("position",
                                                                            flat=True))
        assert positions == [1, 2]
        assert {a.arm for a in reader.assignments.all()} == {reader.arm}


def test_the_case_list_keeps_its_bulk_steps(db, tmp_path) -> None:
    flow = build_flow(tmp_path, cases=2)
    client = flow.client()
    changelist = reverse("admin:trial_case_changelist")
    pks = [c.pk for c in flow.cases]
    for case in flow.cases:
        client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"})
    response = client.post(changelist, {"action": "record_consent_action",
                                        "_selected_action": pks}, follow=True)
    assert ("success", "Consent recorded: 2.") in messages_of(response)
    response = client.post(changelist, {"action": "enrol_and_assign_action",
                                        "_selected_action": pks}, follow=True)
    assert ("success", "Cases enrolled and assigned: 2.") in messages_of(response)
    assert Assignment.objects.filter(case__in=pks).count() == 4


def test_a_locked_trial_shows_no_step_and_refuses_with_the_reason(flow: Flow) -> None:
    client, case = flow.client(), flow.case
    lifecycle.set_status(flow.trial, Trial.Status.LOCKED, by=flow.coordinator,
                         password=PASSWORD)
    html = page_of(client, case)
    assert forms_on(html) == [] and "The trial is locked" in html
    assert 'id="confirm-' not in html
    response = client.post(step_url("consent", case), {"confirm": "on"}, follow=True)
    (level, text), = messages_of(response)
    assert level == "error" and "locked" in text
    response = client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"}, follow=True)
    assert "locked" in messages_of(response)[0][1]
    case.refresh_from_db()
    assert case.consent_recorded_at is None and not case.eligibility_answers


# --- the other apps' panels -------------------------------------------------------------------

def staff_coordinator(trial: Trial) -> Client:
    user = Membership.objects.get(trial=trial, role=Role.COORDINATOR).user
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def test_the_panels_are_registered_by_the_apps_above_trial() -> None:
    assert [name for name, _ in CaseAdmin.panels] == ["ai_draft", "readings", "senior_review",
                                                      "ratings"]


def test_panels_before_reading_a_failed_draft_an_open_reading(db, tmp_path) -> None:
    world = build_read_world(tmp_path, cases=1)
    case = world.cases[0]
    Draft.objects.filter(case=case).update(status=Draft.Status.FAILED,
                                           error="Model server answered 503 three times")
    reading.open_reading(world.assignment(Arm.SCP), user=world.readers[Arm.SCP].user)
    html = page_of(staff_coordinator(world.trial), case)
    assert 'data-status="failed"' in html and "Model server answered 503 three times" in html
    draft = Draft.objects.get(case=case)
    assert reverse("admin:drafting_draft_change", args=[draft.pk]) in html
    readings = html[html.index("case-readings"):]
    for arm, member in world.readers.items():
        assert member.user.username in readings and f'data-arm="{arm}"' in readings
    assert 'data-status="open"' in readings and 'data-status="not_opened"' in readings
    assert "Waits for both readings (0 of 2 submitted)" in html
    assert "Not in a rating campaign." in html


def test_panels_after_readings_review_and_a_rating(db, tmp_path) -> None:
    from rating import ratings
    from rating.models import RaterItem

    world = build_campaign_world(tmp_path, cases=1, raters=2, instruments=("likert",))
    case = world.read.cases[0]
    draft = Draft.objects.get(case=case)
    rater_item = RaterItem.objects.filter(item__case=case).order_by("pk").first()
    ratings.open_item(rater_item)
    ratings.submit(rater_item, {"likert": 4}, by=rater_item.rater.user)
    html = page_of(staff_coordinator(world.trial), case)
    assert 'data-status="done"' in html
    assert reverse("admin:drafting_draft_change", args=[draft.pk]) in html
    assert draft.findings not in html  # the draft's status and link, not its text
    assert html.count('class="reading-status" data-status="submitted"') == 2
    assert 'class="review-status" data-status="signed"' in html
    assert f"signed by {world.read.senior.user.username}" in html
    given = RaterItem.objects.filter(item__case=case).count()
    assert world.campaign.name in html
    assert f'<td class="ratings-progress">1 of {given}</td>' in html


def test_the_world_draft_panel_shows_status_not_text(world: World) -> None:
    html = page_of(world.client("coordinator"), world.case)
    assert 'data-status="done"' in html and DRAFT_TEXT not in html


# --- the trial page's final tools ask for a confirmation ----------------------------------------

def test_assign_cases_asks_for_a_confirmation_with_a_summary(db, tmp_path) -> None:
    flow = build_flow(tmp_path, cases=2)
    client = flow.client()
    Case.objects.filter(trial=flow.trial).update(status=Case.Status.ENROLLED)
    url = reverse("admin:trial_trial_assign", args=[flow.trial.pk])
    response = client.post(url, follow=True)
    (level, text), = messages_of(response)
    assert level == "warning" and "2 enrolled case(s) lack a reader" in text
    assert "4 assignment(s) will be made" in text
    html = response.content.decode()
    assert f'action="{url}"' in html and 'name="confirm"' in html
    assert not Assignment.objects.filter(case__trial=flow.trial).exists()
    response = client.post(url, {"confirm": "on"}, follow=True)
    assert ("success", f"{flow.trial}: 4 assignment(s) made.") in messages_of(response)
    assert Assignment.objects.filter(case__trial=flow.trial).count() == 4


def test_generate_list_asks_for_a_confirmation_with_a_summary(world: World) -> None:
    client = world.client("other_coordinator")
    url = reverse("admin:trial_trial_generate_list", args=[world.other.pk])
    response = client.post(url, follow=True)
    (level, text), = messages_of(response)
    assert level == "warning" and "Generate the randomisation list of Trial B?" in text
    assert "sealed at once and final" in text
    assert f'action="{url}"' in response.content.decode()
    assert not RandomizationList.objects.filter(trial=world.other).exists()
    response = client.post(url, {"confirm": "on"}, follow=True)
    (level, text), = messages_of(response)
    assert level == "success" and "sealed slots" in text
    assert RandomizationList.objects.filter(trial=world.other).exists()
    again = client.post(url, follow=True)  # refused at once: nothing to confirm
    assert messages_of(again)[0][0] == "error" and "already has" in messages_of(again)[0][1]


def test_a_trial_can_assign_each_case_on_enrolment(db, tmp_path,
                                                    django_capture_on_commit_callbacks) -> None:
    """The trial setting: enrolment alone gives the case a reader of each arm (after the
    enrolment commits); without an allocated reader the enrolment stands and says why."""
    flow = build_flow(tmp_path, cases=2)
    Trial.objects.filter(pk=flow.trial.pk).update(assign_on_enrolment=True)
    client = flow.client()
    first = flow.cases[0]
    client.post(step_url("screen", first), {**ELIGIBLE, "confirm": "on"})
    client.post(step_url("consent", first), {"confirm": "on"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(step_url("enrol", first), {"confirm": "on"})
    assert sorted(first.assignments.values_list("arm", flat=True)) == sorted(Arm.values)

    (tmp_path / "none").mkdir()
    unallocated = build_flow(tmp_path / "none", allocate=False)
    Trial.objects.filter(pk=unallocated.trial.pk).update(assign_on_enrolment=True)
    client, case = unallocated.client(), unallocated.case
    client.post(step_url("screen", case), {**ELIGIBLE, "confirm": "on"})
    client.post(step_url("consent", case), {"confirm": "on"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(step_url("enrol", case), {"confirm": "on"})
    case.refresh_from_db()
    assert case.status == Case.Status.ENROLLED and not case.assignments.exists()
    assert "case.assignment_deferred" in actions(case)

