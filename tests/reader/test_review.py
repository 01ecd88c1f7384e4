"""Senior review: ready when both readings are submitted; random blind order; sign-off."""

from __future__ import annotations

import pytest

from reader import reading as rd
from reader import review as svc
from reader.models import Review
from tests.factories import MembershipFactory
from tests.reader.world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent, Role

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
    shown = svc.shown_reports(review)
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
