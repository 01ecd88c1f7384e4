"""The reading and review API: the actions of the pages, over HTTP with session or token auth."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from drafting.models import Draft
from reader.models import Reading, ReadingEvent, Review
from tests.support.factories import PASSWORD
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path)


def client_of(membership) -> APIClient:
    client = APIClient()
    client.force_authenticate(membership.user)
    return client


def base(world: ReadWorld, position: int = 1) -> str:
    return f"/api/trials/{world.trial.slug}/worklist/{position}/"


def open_case(world: ReadWorld, arm: str, position: int = 1) -> tuple[APIClient, dict]:
    client = client_of(world.readers[arm])
    response = client.post(base(world, position) + "open/")
    assert response.status_code == 200, response.content
    return client, response.json()


def test_worklist_lists_my_cases_in_order_with_progress(world: ReadWorld) -> None:
    client = client_of(world.readers[Arm.SCP])
    body = client.get(f"/api/trials/{world.trial.slug}/worklist/").json()
    assert [i["position"] for i in body["items"]] == [1, 2]
    assert (body["done"], body["total"], body["next"]) == (0, 2, 1)
    assert {i["state"] for i in body["items"]} == {"new"}


def test_ai_reader_opens_with_the_draft_and_a_marker(world: ReadWorld) -> None:
    _, state = open_case(world, Arm.AI_ASSISTED)
    draft = Draft.objects.get(case=world.assignment(Arm.AI_ASSISTED).case)
    assert state["findings"] == draft.findings and state["started_from"] == "draft"
    assert state["ai_draft"] == {"findings": draft.findings, "impression": draft.impression}


def test_scp_reader_responses_never_carry_the_draft(world: ReadWorld) -> None:
    assignment = world.assignment(Arm.SCP)
    draft = Draft.objects.get(case=assignment.case)
    client = client_of(world.readers[Arm.SCP])
    bodies = [client.post(base(world) + "open/").content, client.get(base(world)).content,
              client.get(f"/api/trials/{world.trial.slug}/worklist/").content]
    for body in bodies:
        assert draft.findings.encode() not in body and draft.impression.encode() not in body
        assert b"ai_draft" not in body and b"draft_id" not in body


def test_events_start_the_clock_and_unknown_kinds_are_refused(world: ReadWorld) -> None:
    client, _ = open_case(world, Arm.SCP)
    assert client.post(base(world) + "events/", {"kind": "image_displayed"},
                       format="json").status_code == 204
    reading = Reading.objects.get(assignment=world.assignment(Arm.SCP))
    assert reading.first_image_at is not None
    bad = client.post(base(world) + "events/", {"kind": "submitted"}, format="json")
    assert bad.status_code == 400


def test_save_checks_the_version_and_a_stale_tab_gets_409(world: ReadWorld) -> None:
    client, state = open_case(world, Arm.SCP)
    url = base(world) + "save/"
    first = client.post(url, {"findings": "Clear lungs.", "impression": "Normal.",
                              "version": state["version"]}, format="json")
    assert first.status_code == 200 and first.json()["version"] == state["version"] + 1
    stale = client.post(url, {"findings": "old tab", "impression": "",
                              "version": state["version"]}, format="json")
    assert stale.status_code == 409 and stale.json()["version"] == state["version"] + 1
    reading = Reading.objects.get(assignment=world.assignment(Arm.SCP))
    assert reading.findings == "Clear lungs."
    assert reading.events.filter(kind=ReadingEvent.Kind.AUTOSAVE).count() == 1


def test_labels_must_be_the_protocols_findings(world: ReadWorld) -> None:
    client, state = open_case(world, Arm.SCP)
    bad = client.post(base(world) + "save/", {"findings": "x", "impression": "",
                                              "version": state["version"],
                                              "labels": ["Dragons"]}, format="json")
    assert bad.status_code == 400
    good = client.post(base(world) + "save/", {"findings": "x", "impression": "",
                                               "version": state["version"],
                                               "labels": ["Edema", "Cardiomegaly"]},
                       format="json")
    assert good.status_code == 200
    assert Reading.objects.get().labels == ["Cardiomegaly", "Edema"]


def test_submit_locks_and_amend_needs_a_reason(world: ReadWorld) -> None:
    client, state = open_case(world, Arm.AI_ASSISTED)
    client.post(base(world) + "events/", {"kind": "image_displayed"}, format="json")
    done = client.post(base(world) + "submit/", {"findings": "Edited.", "impression": "OK.",
                                                 "version": state["version"]}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "submitted"
    # The reading time is kept (for the coordinator and the analysis), never sent to the reader.
    assert Reading.objects.get(assignment=world.assignment(Arm.AI_ASSISTED)).reading_time_s > 0
    assert "reading_time_s" not in done.json() and "flags" not in done.json()
    again = client.post(base(world) + "save/", {"findings": "late", "impression": "",
                                                "version": done.json()["version"]},
                        format="json")
    assert again.status_code == 409
    no_reason = client.post(base(world) + "amend/", {"findings": "Fixed.", "impression": "OK.",
                                                     "reason": ""}, format="json")
    assert no_reason.status_code == 400
    unsigned = client.post(base(world) + "amend/", {"findings": "Fixed.", "impression": "OK.",
                                                    "reason": "typo"}, format="json")
    assert unsigned.status_code == 400 and "password" in unsigned.json()
    wrong = client.post(base(world) + "amend/", {"findings": "Fixed.", "impression": "OK.",
                                                 "reason": "typo", "password": "nope"},
                        format="json")
    assert wrong.status_code == 400 and "password is wrong" in wrong.json()["detail"]
    amended = client.post(base(world) + "amend/", {"findings": "Fixed.", "impression": "OK.",
                                                   "reason": "typo", "password": PASSWORD},
                          format="json")
    assert amended.status_code == 200 and amended.json()["amendments"][0]["reason"] == "typo"
    assert "Amendment of a submitted report" in amended.json()["amendments"][0]["signature"]["text"]
    assert PASSWORD not in amended.content.decode()
    reading = Reading.objects.get(assignment=world.assignment(Arm.AI_ASSISTED))
    assert reading.findings == "Fixed." and reading.amendments.get().before_findings == "Edited."
    assert AuditEvent.objects.filter(action="reading.amended").count() == 1


def test_actions_before_opening_are_conflicts_and_other_positions_404(world: ReadWorld) -> None:
    client = client_of(world.readers[Arm.SCP])
    assert client.post(base(world) + "save/", {"findings": "", "impression": "",
                                               "version": 0}, format="json").status_code == 409
    assert client.get(base(world, 99)).status_code == 404


def test_ai_case_without_draft_is_409_with_the_reason(tmp_path) -> None:
    world = build_read_world(tmp_path, endpoint=False)
    response = client_of(world.readers[Arm.AI_ASSISTED]).post(base(world) + "open/")
    assert response.status_code == 409 and "not made yet" in response.json()["detail"]


def test_token_authentication_reaches_the_same_actions(world: ReadWorld) -> None:
    token = Token.objects.create(user=world.readers[Arm.SCP].user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.post(base(world) + "open/").status_code == 200
    assert client.get(f"/api/trials/{world.trial.slug}/worklist/").status_code == 200


def submit_both(world: ReadWorld, index: int = 0) -> None:
    for arm, text in ((Arm.AI_ASSISTED, "Kestrel text."), (Arm.SCP, "Plover text.")):
        position = world.assignment(arm, index).position
        client, state = open_case(world, arm, position)
        response = client.post(base(world, position) + "submit/",
                               {"findings": text, "impression": "Imp.",
                                "version": state["version"]}, format="json")
        assert response.status_code == 200


def test_senior_sees_a_case_only_when_both_readings_are_in(world: ReadWorld) -> None:
    senior = client_of(world.senior)
    reviews = f"/api/trials/{world.trial.slug}/reviews/"
    assert senior.get(reviews).json()["total"] == 0
    case = world.assignment(Arm.AI_ASSISTED).case
    assert senior.post(f"{reviews}{case.pk}/open/").status_code == 404
    submit_both(world)
    listed = senior.get(reviews).json()
    assert [i["case_pk"] for i in listed["items"]] == [case.pk]


def test_senior_review_is_blind_to_arm_and_signs_off(world: ReadWorld) -> None:
    submit_both(world)
    case = world.assignment(Arm.AI_ASSISTED).case
    senior = client_of(world.senior)
    url = f"/api/trials/{world.trial.slug}/reviews/{case.pk}/"
    opened = senior.post(url + "open/")
    assert opened.status_code == 200
    body = opened.content.decode()
    state = opened.json()
    assert [r["label"] for r in state["reports"]] == ["Report 1", "Report 2"]
    assert {r["findings"] for r in state["reports"]} == {"Kestrel text.", "Plover text."}
    for marker in ("ai_assisted", '"scp"', '"arm', world.readers[Arm.SCP].user.username,
                   world.readers[Arm.AI_ASSISTED].user.username, "edit_distance", "reader"):
        assert marker not in body
    saved = senior.post(url + "save/", {"findings": "Plover text.", "impression": "Imp.",
                                        "version": state["version"],
                                        "started_from": "report1"}, format="json")
    assert saved.status_code == 200
    wrong = senior.post(url + "sign/", {"findings": "Plover text.", "impression": "Imp.",
                                        "version": saved.json()["version"], "password": "x"},
                        format="json")
    assert wrong.status_code == 400 and Review.objects.get(case=case).status == "open"
    signed = senior.post(url + "sign/", {"findings": "Plover text.", "impression": "Imp.",
                                         "version": saved.json()["version"],
                                         "password": PASSWORD}, format="json")
    assert signed.status_code == 200 and signed.json()["status"] == "signed"
    assert signed.json()["signature"]["meaning"] == "Final report approved"
    for response in (opened, saved, signed, senior.get(url)):  # no clock, as for readers
        for key in ("review_time_s", "opened_at", "review_time"):
            assert key not in response.content.decode(), key
    review = Review.objects.get(case=case)
    assert review.edit_distance_scp == 0 and review.edit_distance_ai > 0
    assert review.started_from == "report1"
    late = senior.post(url + "save/", {"findings": "x", "impression": "",
                                       "version": signed.json()["version"]}, format="json")
    assert late.status_code == 409


def test_senior_sees_junior_reports_without_signatures_or_model_markers(
        world: ReadWorld) -> None:
    """A signature or an "AI-generated" marker left in a junior report would tell the senior
    which arm wrote it: the senior gets the text as a rater would."""
    for arm, extra in ((Arm.AI_ASSISTED, "Opacity. [AI draft]"), (Arm.SCP, "Opacity.")):
        position = world.assignment(arm).position
        client, state = open_case(world, arm, position)
        signature = f"Electronically signed by {world.readers[arm].user.username}"
        assert client.post(base(world, position) + "submit/",
                           {"findings": f"{extra}\n{signature}", "impression": "Imp.",
                            "version": state["version"]}, format="json").status_code == 200
    case = world.assignment(Arm.AI_ASSISTED).case
    opened = client_of(world.senior).post(
        f"/api/trials/{world.trial.slug}/reviews/{case.pk}/open/")
    assert [r["findings"] for r in opened.json()["reports"]] == ["Opacity.", "Opacity."]
    assert b"Electronically" not in opened.content and b"AI draft" not in opened.content


def test_a_senior_who_read_the_case_does_not_review_it(world: ReadWorld) -> None:
    """Someone who is both a reader and a senior would know the arms of their own case."""
    submit_both(world)
    case = world.assignment(Arm.AI_ASSISTED).case
    reader_user = world.readers[Arm.SCP].user
    world.senior.user = reader_user
    world.senior.save()
    senior = client_of(world.senior)
    reviews = f"/api/trials/{world.trial.slug}/reviews/"
    assert senior.get(reviews).json()["total"] == 0
    assert senior.post(f"{reviews}{case.pk}/open/").status_code == 404
