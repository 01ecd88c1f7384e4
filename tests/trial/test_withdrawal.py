"""Withdrawing an enrolled case: final, with a reason, audited; from then on the case is
offered to nobody (no reading starts or is submitted, no senior review, no rating item), what
was recorded before stays."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from rating.build import prospective_cases
from rating.models import Campaign
from rating.queries import rater_items
from reader.models import Reading, Review
from reader.review import reviewable_cases
from tests.support.factories import MembershipFactory
from tests.support.read_world import ReadWorld, build_read_world
from trial.enrolment import EnrolmentError, withdraw
from trial.models import Arm, AuditEvent, Case, Membership, Role, Trial

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path)


def coordinator(world: ReadWorld) -> Membership:
    return Membership.objects.get(trial=world.trial, role=Role.COORDINATOR)


def api(membership: Membership) -> APIClient:
    client = APIClient()
    client.force_authenticate(membership.user)
    return client


def worklist(world: ReadWorld, arm: str) -> dict:
    return api(world.readers[arm]).get(f"/api/trials/{world.trial.slug}/worklist/").json()


def reading_url(world: ReadWorld, arm: str, index: int = 0) -> str:
    position = world.assignment(arm, index).position
    return f"/api/trials/{world.trial.slug}/worklist/{position}/"


def submit(world: ReadWorld, arm: str, index: int = 0):
    client = api(world.readers[arm])
    url = reading_url(world, arm, index)
    state = client.post(url + "open/").json()
    return client.post(url + "submit/", {"findings": "Clear.", "impression": "Normal.",
                                         "version": state["version"]}, format="json")


def test_withdraw_needs_a_reason_an_enrolled_case_and_an_open_trial(world: ReadWorld) -> None:
    case, by = world.cases[0], coordinator(world).user
    with pytest.raises(EnrolmentError, match="a reason is required"):
        withdraw(case, reason="  ", by=by)
    done = withdraw(case, reason="Patient withdrew consent", by=by)
    assert (done.status, done.withdrawal_reason) == ("withdrawn", "Patient withdrew consent")
    assert done.withdrawn_at is not None
    event = AuditEvent.objects.get(action="case.withdrawn", object_id=str(case.pk))
    assert event.before == {"status": "enrolled"} and event.actor == by
    with pytest.raises(EnrolmentError, match="is withdrawn; expected enrolled"):
        withdraw(case, reason="again", by=by)
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    with pytest.raises(EnrolmentError, match="is locked"):
        withdraw(world.cases[1], reason="late", by=by)


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.COORDINATOR, True), (Role.READER, False), (Role.SENIOR, False),
    (Role.STATISTICIAN, False)])
def test_the_case_pages_withdraw_step(world: ReadWorld, role: str, allowed: bool) -> None:
    case = world.cases[0]
    member = (coordinator(world) if role == Role.COORDINATOR
              else MembershipFactory(trial=world.trial, role=role))
    member.user.is_staff = True
    member.user.save()
    client = Client()
    client.force_login(member.user)
    url = reverse("admin:trial_case_withdraw", args=[case.pk])
    unconfirmed = client.post(url, {"reason": "Consent withdrawn"})
    assert Case.objects.get(pk=case.pk).status == "enrolled"
    response = client.post(url, {"reason": "Consent withdrawn", "confirm": "on"})
    status = Case.objects.get(pk=case.pk).status
    if allowed:
        assert unconfirmed.status_code == 302 and response.status_code == 302
        assert status == "withdrawn"
        page = client.get(reverse("admin:trial_case_change", args=[case.pk])).content.decode()
        assert "Withdrawn on" in page and "Consent withdrawn" in page
        assert 'data-step-form="withdraw"' not in page  # once: final
    else:
        assert response.status_code in (302, 403) and status == "enrolled"


def test_the_withdraw_form_is_on_an_enrolled_cases_page(world: ReadWorld) -> None:
    member = coordinator(world)
    member.user.is_staff = True
    member.user.save()
    client = Client()
    client.force_login(member.user)
    page = client.get(reverse("admin:trial_case_change", args=[world.cases[0].pk]))
    assert 'data-step-form="withdraw"' in page.content.decode()


def test_a_withdrawn_case_is_read_by_nobody_and_an_open_reading_cannot_be_submitted(
    world: ReadWorld,
) -> None:
    case = world.assignment(Arm.SCP).case
    ai_client = api(world.readers[Arm.AI_ASSISTED])
    ai_url = reading_url(world, Arm.AI_ASSISTED)
    if world.assignment(Arm.AI_ASSISTED).case_id != case.pk:  # the same case for both arms
        ai_url = next(reading_url(world, Arm.AI_ASSISTED, i) for i in range(2)
                      if world.assignment(Arm.AI_ASSISTED, i).case_id == case.pk)
    opened = ai_client.post(ai_url + "open/").json()  # open before the withdrawal
    withdraw(case, reason="Consent withdrawn", by=coordinator(world).user)

    body = worklist(world, Arm.SCP)
    states = {i["position"]: i["state"] for i in body["items"]}
    assert states[world.assignment(Arm.SCP).position] == "withdrawn"
    assert (body["done"], body["total"]) == (0, 1)
    refused = api(world.readers[Arm.SCP]).post(reading_url(world, Arm.SCP) + "open/")
    assert refused.status_code == 409 and "was withdrawn from the trial" in refused.json()[
        "detail"]
    assert not Reading.objects.filter(assignment=world.assignment(Arm.SCP)).exists()

    saved = ai_client.post(ai_url + "save/", {"findings": "Typed after.", "impression": "",
                                              "version": opened["version"]}, format="json")
    assert saved.status_code == 409 and "withdrawn" in saved.json()["detail"]
    beat = ai_client.post(ai_url + "events/", {"kind": "heartbeat"}, format="json")
    assert beat.status_code == 409
    stored = Reading.objects.get(assignment__case=case)
    assert (stored.version, stored.findings) == (opened["version"], opened["findings"])
    late = ai_client.post(ai_url + "submit/", {"findings": "Clear.", "impression": "Normal.",
                                               "version": opened["version"]}, format="json")
    assert late.status_code == 409 and "withdrawn" in late.json()["detail"]
    assert Reading.objects.get(assignment__case=case).status == Reading.Status.OPEN

    client = Client()
    client.force_login(world.readers[Arm.SCP].user)
    page = client.get(reverse("reader:case", args=[world.trial.slug,
                                                   world.assignment(Arm.SCP).position]))
    assert page.status_code == 409 and "was withdrawn" in page.content.decode()


def test_a_submitted_reading_of_a_withdrawn_case_stays_and_can_be_looked_at(
    world: ReadWorld,
) -> None:
    assert submit(world, Arm.SCP).status_code == 200
    case = world.assignment(Arm.SCP).case
    withdraw(case, reason="Ineligible after all", by=coordinator(world).user)
    body = worklist(world, Arm.SCP)
    assert (body["done"], body["total"]) == (1, 2)
    looked = api(world.readers[Arm.SCP]).post(reading_url(world, Arm.SCP) + "open/")
    assert looked.status_code == 200 and looked.json()["status"] == "submitted"


def _both_submitted(world: ReadWorld) -> Case:
    case = world.assignment(Arm.SCP).case
    for arm in (Arm.SCP, Arm.AI_ASSISTED):
        index = next(i for i in range(2) if world.assignment(arm, i).case_id == case.pk)
        assert submit(world, arm, index).status_code == 200
    return case


def _signed_and_built(world: ReadWorld) -> tuple[Case, Membership, Campaign]:
    """A case read in both arms and signed, and a campaign with one rater built from it."""
    from rating import build
    from reader.review import open_review, sign

    case = _both_submitted(world)
    review = open_review(case, senior=world.senior)
    sign(review, findings="F.", impression="I.", version=review.version,
         by=world.senior.user, simulated=True)
    rater = MembershipFactory(trial=world.trial, role=Role.RATER)
    campaign = Campaign.objects.create(trial=world.trial, name="C", instruments=["likert"],
                                       kind=Campaign.Kind.PROSPECTIVE, seed=1)
    campaign.raters.set([rater])
    assert build.build(campaign) > 0
    return case, rater, campaign


def test_no_senior_review_of_a_withdrawn_case(world: ReadWorld) -> None:
    case = _both_submitted(world)
    assert reviewable_cases(world.senior).filter(pk=case.pk).exists()
    senior = api(world.senior)
    url = f"/api/trials/{world.trial.slug}/reviews/{case.pk}/"
    state = senior.post(url + "open/").json()
    withdraw(case, reason="Consent withdrawn", by=coordinator(world).user)
    assert not reviewable_cases(world.senior).filter(pk=case.pk).exists()
    signed = senior.post(url + "sign/", {"findings": "F.", "impression": "I.",
                                         "version": state["version"], "password": "x"},
                         format="json")
    assert signed.status_code in (404, 409)
    assert Review.objects.get(case=case).status == Review.Status.OPEN


def test_no_rating_item_of_a_withdrawn_case_and_its_unrated_items_leave_the_queues(
    world: ReadWorld,
) -> None:
    case, rater, campaign = _signed_and_built(world)
    assert rater_items(rater, campaign).count() == 2  # one per junior report
    withdraw(case, reason="Consent withdrawn", by=coordinator(world).user)
    assert rater_items(rater, campaign).count() == 0
    other = Campaign.objects.create(trial=world.trial, name="D", instruments=["likert"],
                                    kind=Campaign.Kind.PROSPECTIVE, seed=2)
    assert not prospective_cases(other).filter(pk=case.pk).exists()


def test_the_api_withdraws_for_a_coordinator_only(world: ReadWorld) -> None:
    case = world.cases[0]
    url = f"/api/trials/{world.trial.slug}/cases/{case.pk}/withdraw/"
    statistician = MembershipFactory(trial=world.trial, role=Role.STATISTICIAN)
    assert api(statistician).post(url, {"reason": "x"}, format="json").status_code == 403
    assert api(coordinator(world)).post(url, {}, format="json").status_code == 400
    done = api(coordinator(world)).post(url, {"reason": "Consent withdrawn"}, format="json")
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["withdrawal_reason"]) == (
        "withdrawn", "Consent withdrawn")
    again = api(coordinator(world)).post(url, {"reason": "again"}, format="json")
    assert again.status_code == 409


def test_the_analysis_keeps_a_withdrawn_case_in_the_flow_and_out_of_everything_else(
    world: ReadWorld,
) -> None:
    from analysis import datasets
    from rating.lifecycle import set_status
    from rating.ratings import open_item
    from rating.ratings import submit as rate

    case, rater, campaign = _signed_and_built(world)

    campaign = set_status(campaign, Campaign.Status.OPEN, by=coordinator(world).user)
    for item in rater_items(rater, campaign):
        open_item(item)
        rate(item, {"likert": "4"}, by=rater.user)
    before = (datasets.readings(world.trial), datasets.ratings(world.trial),
              datasets.report_texts(world.trial))
    assert [set(frame["case"]) for frame in before] == [{case.case_id}] * 3
    withdraw(case, reason="Consent withdrawn", by=coordinator(world).user)
    after = (datasets.readings(world.trial), datasets.ratings(world.trial),
             datasets.report_texts(world.trial))
    assert [len(frame) for frame in after] == [0, 0, 0]
    cases = datasets.cases(world.trial).set_index("case")
    assert cases.loc[case.case_id, "status"] == "withdrawn"
    assert bool(cases.loc[case.case_id, "enrolled"]) is True
