"""Implausible-reading flags and the reader's blindness to their own clock.

At submission a reading is flagged ``short_reading`` (reading time under
``READING_MIN_SECONDS``), ``empty_findings`` and ``empty_impression`` (blank once stripped).
Flags never block a submission, are audited, shown to the coordinator in the Readings admin
(a column and a "flagged" filter) and never sent to the reader; amendments re-check the empty
sections. The reader's page and API carry neither the reading time (nor active time, gaps)
nor the flags.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from reader import reading as svc
from reader.models import Reading
from tests.support.factories import PASSWORD
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent, Membership, Role

pytestmark = pytest.mark.django_db

SHORT, NO_FINDINGS, NO_IMPRESSION = "short_reading", "empty_findings", "empty_impression"
TIMING_KEYS = ("reading_time_s", "active_time_s", "gap_s", "first_image_at", "opened_at",
               "flags")


@pytest.fixture
def world(tmp_path, settings) -> ReadWorld:
    settings.READING_MIN_SECONDS = 10
    return build_read_world(tmp_path)


def _opened(world: ReadWorld, arm: str = Arm.SCP, *, seconds_ago: float = 0,
            index: int = 0) -> Reading:
    """An open reading whose image was first displayed ``seconds_ago``."""
    reading = svc.open_reading(world.assignment(arm, index), user=None)
    svc.record_event(reading, "image_displayed")
    if seconds_ago:
        Reading.objects.filter(pk=reading.pk).update(
            first_image_at=timezone.now() - timedelta(seconds=seconds_ago))
    return Reading.objects.get(pk=reading.pk)


def _submit(reading: Reading, findings: str = "Clear lungs.", impression: str = "Normal.",
            user=None) -> Reading:
    return svc.submit(reading, findings=findings, impression=impression,
                      version=reading.version, user=user)


# --- the service ------------------------------------------------------------------------------

def test_a_normal_reading_is_not_flagged(world: ReadWorld) -> None:
    done = _submit(_opened(world, seconds_ago=60))
    assert done.reading_time_s >= 60
    assert Reading.objects.get(pk=done.pk).flags == []
    event = AuditEvent.objects.get(action="reading.submitted", object_id=str(done.pk))
    assert event.after["flags"] == []


def test_a_reading_under_the_threshold_is_flagged_short_and_still_submitted(
        world: ReadWorld) -> None:
    done = _submit(_opened(world, seconds_ago=3))
    stored = Reading.objects.get(pk=done.pk)
    assert stored.status == Reading.Status.SUBMITTED  # never blocked
    assert 3 <= stored.reading_time_s < 10
    assert stored.flags == [SHORT]
    event = AuditEvent.objects.get(action="reading.submitted", object_id=str(done.pk))
    assert event.after["flags"] == [SHORT]


def test_the_threshold_is_the_reading_min_seconds_setting(world: ReadWorld, settings) -> None:
    settings.READING_MIN_SECONDS = 2
    assert _submit(_opened(world, seconds_ago=3)).flags == []
    settings.READING_MIN_SECONDS = 30
    other = _opened(world, Arm.AI_ASSISTED, seconds_ago=20)
    assert _submit(other).flags == [SHORT]


@pytest.mark.parametrize(("findings", "impression", "flags"), [
    ("  \n ", "Normal.", [NO_FINDINGS]),
    ("Clear lungs.", " \t\n", [NO_IMPRESSION]),
    ("Clear lungs.", "Normal.", []),
])
def test_empty_sections_are_flagged_after_stripping(world: ReadWorld, findings: str,
                                                    impression: str, flags: list) -> None:
    done = _submit(_opened(world, seconds_ago=60), findings, impression)
    assert done.status == Reading.Status.SUBMITTED
    assert Reading.objects.get(pk=done.pk).flags == flags


def test_short_and_empty_together_in_a_fixed_order(world: ReadWorld) -> None:
    done = _submit(_opened(world), "", "Normal.")
    assert Reading.objects.get(pk=done.pk).flags == [SHORT, NO_FINDINGS]


def test_an_amendment_re_checks_the_empty_sections_and_keeps_short(world: ReadWorld) -> None:
    user = world.readers[Arm.SCP].user
    done = _submit(_opened(world), "Clear lungs.", "")
    assert Reading.objects.get(pk=done.pk).flags == [SHORT, NO_IMPRESSION]

    svc.amend(done, findings="Clear lungs.", impression="Normal.", reason="impression missing",
              by=user, password=PASSWORD)
    assert Reading.objects.get(pk=done.pk).flags == [SHORT]  # the time is as it was
    event = AuditEvent.objects.get(action="reading.amended")
    assert event.before["flags"] == [SHORT, NO_IMPRESSION] and event.after["flags"] == [SHORT]

    svc.amend(done, findings=" ", impression="Normal.", reason="findings moved",
              by=user, password=PASSWORD)
    assert Reading.objects.get(pk=done.pk).flags == [SHORT, NO_FINDINGS]


def test_an_amendment_of_a_normal_reading_can_flag_an_emptied_section(world: ReadWorld) -> None:
    user = world.readers[Arm.SCP].user
    done = _submit(_opened(world, seconds_ago=60))
    assert Reading.objects.get(pk=done.pk).flags == []
    svc.amend(done, findings="Clear lungs.", impression="", reason="no impression",
              by=user, password=PASSWORD)
    assert Reading.objects.get(pk=done.pk).flags == [NO_IMPRESSION]


# --- the reader sees neither the clock nor the flags -----------------------------------------

def _reader_api(world: ReadWorld, arm: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.readers[arm].user)
    return client


def test_the_reader_api_returns_no_reading_time_and_no_flags(world: ReadWorld) -> None:
    client = _reader_api(world, Arm.SCP)
    position = world.assignment(Arm.SCP).position
    url = f"/api/trials/{world.trial.slug}/worklist/{position}/"
    state = client.post(url + "open/").json()
    client.post(url + "events/", {"kind": "image_displayed"}, format="json")
    submitted = client.post(url + "submit/", {"findings": "Clear lungs.", "impression": " ",
                                              "version": state["version"]}, format="json")
    assert submitted.status_code == 200, submitted.content
    reading = Reading.objects.get(assignment=world.assignment(Arm.SCP))
    assert reading.flags == [SHORT, NO_IMPRESSION] and reading.reading_time_s is not None
    amended = client.post(url + "amend/", {"findings": "Clear lungs.", "impression": "",
                                           "reason": "typo", "password": PASSWORD},
                          format="json")
    assert amended.status_code == 200, amended.content
    listing = client.get(f"/api/trials/{world.trial.slug}/worklist/")
    for response in (submitted, client.get(url), amended, listing):
        body = response.json()
        for key in TIMING_KEYS:
            assert key not in body, key
        text = response.content.decode()
        for word in (SHORT, NO_FINDINGS, NO_IMPRESSION, "reading_time", "active_time",
                     "gap_s", "flags"):
            assert word not in text, word
    body = client.get(url).json()
    assert body["status"] == "submitted" and body["submitted_at"]


def test_the_case_page_shows_no_reading_time_and_no_flags(world: ReadWorld) -> None:
    done = _submit(_opened(world), "Clear lungs.", "")
    assert done.flags == [SHORT, NO_IMPRESSION]
    browser = Client()
    browser.force_login(world.readers[Arm.SCP].user)
    page = browser.get(f"/read/{world.trial.slug}/{world.assignment(Arm.SCP).position}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="submitted-note"' in html and "Submitted. The report is locked." in html
    for word in ("reading time", "reading_time", "active time", "active_time", "gap",
                 f"{done.reading_time_s:.1f} s", SHORT, NO_FINDINGS, NO_IMPRESSION,
                 "Short reading", "Empty IMPRESSION", "flag"):
        assert word.lower() not in html.lower(), word


def test_the_schema_of_the_reading_state_has_no_clock(world: ReadWorld) -> None:
    client = Client()
    client.force_login(world.readers[Arm.SCP].user)
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    state = schema.json()["components"]["schemas"]["ReadingState"]["properties"]
    assert "submitted_at" in state and "deviation" in state and "ai_draft" in state
    for key in TIMING_KEYS:
        assert key not in state, key


# --- the coordinator sees them -----------------------------------------------------------------

@pytest.fixture
def coordinator_client(world: ReadWorld) -> Client:
    coordinator = Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user
    coordinator.is_staff = True
    coordinator.save()
    client = Client()
    client.force_login(coordinator)
    return client


def test_the_readings_admin_shows_the_flags_with_a_filter(world: ReadWorld,
                                                          coordinator_client: Client) -> None:
    flagged = _submit(_opened(world, Arm.SCP), "Clear lungs.", "")
    normal = _submit(_opened(world, Arm.AI_ASSISTED, seconds_ago=60))
    empty = _submit(_opened(world, Arm.AI_ASSISTED, seconds_ago=60, index=1), " ", "Normal.")
    unsubmitted = svc.open_reading(world.assignment(Arm.SCP, 1), user=None)

    page = coordinator_client.get("/admin/reader/reading/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "column-flag_list" in html
    assert "Short reading, Empty IMPRESSION" in html and "Empty FINDINGS" in html
    assert "flagged" in html and "?flagged=yes" in html  # the filter

    def listed(query: str) -> set[int]:
        response = coordinator_client.get(f"/admin/reader/reading/?{query}")
        assert response.status_code == 200
        return {r.pk for r in response.context["cl"].result_list}

    assert listed("flagged=yes") == {flagged.pk, empty.pk}
    assert listed("flagged=no") == {normal.pk, unsubmitted.pk}
    assert listed("flagged=short_reading") == {flagged.pk}
    assert listed("flagged=empty_findings") == {empty.pk}
    assert listed("flagged=empty_impression") == {flagged.pk}

    detail = coordinator_client.get(f"/admin/reader/reading/{flagged.pk}/change/")
    assert "Short reading, Empty IMPRESSION" in detail.content.decode()
    # The coordinator still sees the reading time the reader is not shown.
    assert f"{flagged.reading_time_s:.1f} s" in detail.content.decode()
