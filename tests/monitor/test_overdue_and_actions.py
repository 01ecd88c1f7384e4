"""Overdue work (times moved back, and the two settings) and the next actions' sentences."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from drafting.models import Draft
from monitor.dashboard import dashboard_data
from reader import reading as rd
from reader import review as rv
from reader.models import Reading
from tests.support.factories import MembershipFactory, SiteFactory
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, Case, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path, cases=4)


def texts(data: dict) -> list[str]:
    return [action["text"] for action in data["actions"]]


def submit(world: ReadWorld, arm: str, index: int) -> Reading:
    opened = rd.open_reading(world.assignment(arm, index), user=None)
    return rd.submit(opened, findings="Clear.", impression="Normal.", version=opened.version)


def both_read(world: ReadWorld, index: int, *, ago: timedelta) -> Case:
    """The index-th AI-arm case read in both arms, the second reading ``ago`` before now."""
    case = world.assignment(Arm.AI_ASSISTED, index).case
    for arm in (Arm.AI_ASSISTED, Arm.SCP):
        reading = rd.open_reading(world.readers[arm].assignments.get(case=case), user=None)
        rd.submit(reading, findings="Clear.", impression="Normal.", version=reading.version)
    Reading.objects.filter(assignment__case=case).update(submitted_at=timezone.now() - ago)
    return case


def test_a_reading_is_overdue_once_open_longer_than_the_setting(world, settings) -> None:
    now = timezone.now()
    late = rd.open_reading(world.assignment(Arm.AI_ASSISTED, 0), user=None)
    recent = rd.open_reading(world.assignment(Arm.SCP, 0), user=None)
    Reading.objects.filter(pk=late.pk).update(opened_at=now - timedelta(hours=25))
    Reading.objects.filter(pk=recent.pk).update(opened_at=now - timedelta(hours=23))
    submitted = submit(world, Arm.SCP, 1)  # a submitted reading is never overdue
    Reading.objects.filter(pk=submitted.pk).update(opened_at=now - timedelta(days=9))

    data = dashboard_data(world.trial, now=now)
    assert data["numbers"]["readings.overdue"] == 1
    assert data["numbers"][f"readings.{Arm.AI_ASSISTED}.overdue"] == 1
    reader = world.readers[Arm.AI_ASSISTED].user.username
    assert f"Reader {reader} has 1 overdue reading (open more than 24 h)." in texts(data)
    overdue = [row["cells"] for row in data["tables"]["overdue"]["rows"]]
    assert overdue == [[reader, f"Reader ({world.trial.ai_assisted_label})",
                        "readings open more than 24 h", 1]]

    settings.OVERDUE_READING_HOURS = 22
    data = dashboard_data(world.trial, now=now)
    assert data["numbers"]["readings.overdue"] == 2
    assert data["limits"]["reading_hours"] == 22
    settings.OVERDUE_READING_HOURS = 26
    assert dashboard_data(world.trial, now=now)["numbers"]["readings.overdue"] == 0


def test_a_case_is_overdue_once_ready_for_a_senior_longer_than_the_setting(world,
                                                                           settings) -> None:
    now = timezone.now()
    unopened = both_read(world, 0, ago=timedelta(days=4))
    opened = both_read(world, 1, ago=timedelta(days=5))
    rv.open_review(opened, senior=world.senior)
    both_read(world, 2, ago=timedelta(days=2))  # ready, not late
    signed = both_read(world, 3, ago=timedelta(days=8))
    review = rv.open_review(signed, senior=world.senior)
    rv.sign(review, findings="Final.", impression="Final.", version=review.version,
            by=world.senior.user, simulated=True)
    # Only the second submission counts: the first one long ago does not make a case late.
    late_first = world.assignment(Arm.AI_ASSISTED, 2).case
    Reading.objects.filter(assignment__case=late_first, assignment__arm=Arm.AI_ASSISTED
                           ).update(submitted_at=now - timedelta(days=30))

    data = dashboard_data(world.trial, now=now)
    n = data["numbers"]
    assert (n["reviews.ready"], n["reviews.in_review"], n["reviews.signed"]) == (2, 1, 1)
    assert (n["reviews.ready_overdue"], n["reviews.in_review_overdue"]) == (1, 1)
    assert n["reviews.overdue"] == 2
    senior = world.senior.user.username
    site = world.senior.site.code
    assert f"Senior {senior} has 1 final report waiting more than 3 days." in texts(data)
    assert (f"1 case at site {site} waiting for a senior more than 3 days, not yet opened."
            in texts(data))
    seniors = {row["key"]: row["cells"] for row in data["tables"]["seniors"]["rows"]}
    assert seniors[f"s-{world.senior.pk}"] == [senior, site, 2, 1, 1, 1]
    assert unopened.pk  # (the 4-day case is the one overdue and unopened)

    settings.OVERDUE_REVIEW_DAYS = 1
    assert dashboard_data(world.trial, now=now)["numbers"]["reviews.overdue"] == 3
    settings.OVERDUE_REVIEW_DAYS = 6
    data = dashboard_data(world.trial, now=now)
    assert data["numbers"]["reviews.overdue"] == 0
    assert data["tables"]["overdue"]["rows"] == []


def test_next_actions_say_what_to_do_with_a_link_for_coordinators(world) -> None:
    trial = world.trial
    site = world.senior.site
    # Two cases ready at a site no senior covers.
    elsewhere = SiteFactory(trial=trial, code="FAR")
    moved = both_read(world, 1, ago=timedelta(hours=1)), both_read(world, 2, ago=timedelta(0))
    Case.objects.filter(pk__in=[c.pk for c in moved]).update(site=elsewhere)
    # A reading open for two days (another case's).
    case = world.assignment(Arm.AI_ASSISTED, 3).case
    late = rd.open_reading(world.readers[Arm.SCP].assignments.get(case=case), user=None)
    Reading.objects.filter(pk=late.pk).update(opened_at=timezone.now() - timedelta(days=2))
    # Drafts: two failed, one case enrolled with none (and not assigned), one screened case.
    for draft in Draft.objects.filter(case__in=world.cases[:2]):
        Draft.objects.filter(pk=draft.pk).update(status=Draft.Status.FAILED,
                                                 error="No reply within 60 s (ReadTimeout).")
    Case.objects.create(trial=trial, site=site, case_id="NEW-1", status=Case.Status.ENROLLED,
                        enrolled_at=timezone.now())
    Case.objects.create(trial=trial, site=site, case_id="NEW-2")
    MembershipFactory(trial=trial, role=Role.READER, site=site)  # not allocated

    data = dashboard_data(trial)
    scp = world.readers[Arm.SCP].user.username
    assert texts(data) == [
        "1 reader not allocated to an arm: allocate readers.",
        "1 case enrolled but not assigned: assign cases.",
        "1 case screened and awaiting a decision: record consent and enrol, or exclude.",
        "2 drafts failed: retry.",
        "1 enrolled case without an AI draft: queue missing drafts.",
        f"Reader {scp} has 1 overdue reading (open more than 24 h).",
        "2 cases at site FAR ready for a final report, but no senior covers the site: add a "
        "senior.",
    ]
    urls = [action["url"] for action in data["actions"]]
    assert urls[3] == f"/monitor/{trial.slug}/retry-drafts/"
    assert urls[0] == urls[1] == f"/admin/trial/trial/{trial.pk}/change/"
    assert all(url for url in urls)
    assert all(action["url"] is None for action in dashboard_data(trial, links=False)["actions"])


def test_nothing_to_do_is_said_too(world) -> None:
    assert texts(dashboard_data(world.trial)) == ["Nothing needs doing now."]


def test_a_trial_without_an_endpoint_says_so(tmp_path) -> None:
    world = build_read_world(tmp_path, cases=1, endpoint=False)
    data = dashboard_data(world.trial)
    assert data["endpoint"] is None
    assert ("No active model endpoint: the AI-assisted arm gets no drafts; set one up."
            in texts(data))
    assert data["numbers"]["drafts.missing"] == 0
