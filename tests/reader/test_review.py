"""Senior review: ready when both readings are submitted; random blind order; sign-off."""

from __future__ import annotations

import pytest

from reader import reading as rd
from reader import review as svc
from reader.models import Review
from tests.support.factories import MembershipFactory
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent, Role, Trial

pytestmark = pytest.mark.django_db


def _read_both(world: ReadWorld, texts: dict[str, str]) -> None:
    for arm, text in texts.items():
        reading = rd.open_reading(world.assignment(arm), user=None)
        rd.submit(reading, findings=text, impression="Normal.", version=0)


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path, cases=1)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2),
    ("same", "same", 0),
])
def test_edit_distance_is_levenshtein(a: str, b: str, expected: int) -> None:
    assert svc.edit_distance(a, b) == expected == svc.edit_distance(b, a)


def test_a_case_is_reviewable_only_when_both_readings_are_submitted(world: ReadWorld) -> None:
    _read_both(world, {Arm.AI_ASSISTED: "AI-arm report."})
    assert not svc.reviewable_cases(world.senior).exists()
    with pytest.raises(rd.ReadingError, match="not ready"):
        svc.open_review(world.cases[0], senior=world.senior)
    _read_both(world, {Arm.SCP: "SCP report."})
    assert list(svc.reviewable_cases(world.senior)) == [world.cases[0]]


def test_review_shows_both_reports_in_a_stored_order_and_one_senior_owns_it(
    world: ReadWorld,
) -> None:
    _read_both(world, {Arm.AI_ASSISTED: "AI-arm report.", Arm.SCP: "SCP report."})
    review = svc.open_review(world.cases[0], senior=world.senior)
    shown = svc.readings_shown(review)
    assert {r.assignment.arm for r in shown} == {Arm.AI_ASSISTED, Arm.SCP}
    assert svc.open_review(world.cases[0], senior=world.senior).order == review.order
    other = MembershipFactory(trial=world.trial, role=Role.SENIOR, site=world.senior.site)
    with pytest.raises(rd.ReadingError, match="Another senior"):
        svc.open_review(world.cases[0], senior=other)


def test_signing_locks_and_stores_time_and_edit_distances(world: ReadWorld) -> None:
    _read_both(world, {Arm.AI_ASSISTED: "Clear lungs.", Arm.SCP: "Clear lung."})
    review = svc.open_review(world.cases[0], senior=world.senior)
    signed = svc.sign(review, findings="Clear lungs.", impression="Normal.", version=0,
                      by=world.senior.user)
    assert signed.status == Review.Status.SIGNED and signed.review_time_s >= 0
    assert (signed.edit_distance_ai, signed.edit_distance_scp) == (0, 1)
    with pytest.raises(rd.Locked):
        svc.save_review(signed, findings="x", impression="y", version=signed.version)
    assert AuditEvent.objects.filter(action="review.signed").count() == 1


def test_nothing_changes_once_the_trial_is_locked(world: ReadWorld) -> None:
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    review = svc.open_review(world.cases[0], senior=world.senior)
    world.trial.status = Trial.Status.LOCKED
    world.trial.save()
    with pytest.raises(rd.Locked, match="trial is locked"):
        svc.sign(review, findings="Final.", impression="", version=review.version, by=None)
    reading = world.assignment(Arm.SCP).reading
    with pytest.raises(rd.Locked, match="trial is locked"):
        rd.amend(reading, findings="x", impression="", reason="late", by=None)
    assert Review.objects.get(pk=review.pk).status == Review.Status.OPEN


def test_an_amendment_after_the_senior_started_is_refused(world: ReadWorld) -> None:
    """The senior works from the submitted texts: they must not change underneath."""
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    svc.open_review(world.cases[0], senior=world.senior)
    reading = world.assignment(Arm.SCP).reading
    with pytest.raises(rd.Locked, match="senior has started"):
        rd.amend(reading, findings="changed", impression="", reason="typo", by=None)
    reading.refresh_from_db()
    assert reading.findings == "SCP text." and not reading.amendments.exists()


def test_submission_stores_the_edit_distance_from_the_draft(world: ReadWorld) -> None:
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    ai = world.assignment(Arm.AI_ASSISTED).reading
    expected = svc.edit_distance(svc.report_text(ai.draft.findings, ai.draft.impression),
                                 svc.report_text("AI text.", "Normal."))
    assert ai.edit_distance_from_draft == expected > 0
    assert world.assignment(Arm.SCP).reading.edit_distance_from_draft is None


def test_signing_right_after_start_from_keeps_the_choice(world: ReadWorld) -> None:
    """The page may sign before its first autosave: the sign-off carries the choice too."""
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    review = svc.open_review(world.cases[0], senior=world.senior)
    signed = svc.sign(review, findings="SCP text.", impression="Normal.", version=0, by=None,
                      started_from="report2")
    assert Review.objects.get(pk=signed.pk).started_from == "report2"
