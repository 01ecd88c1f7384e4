"""Senior review: ready when both readings are submitted; random blind order; sign-off."""

from __future__ import annotations

import pytest

from reader import reading as rd
from reader import review as svc
from reader.models import Review
from tests.support.factories import PASSWORD, MembershipFactory
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent, Membership, Role, Signature, Trial
from trial.signatures import SignatureRefused

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
                      by=world.senior.user, password=PASSWORD)
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
        svc.sign(review, findings="Final.", impression="", version=review.version,
                 by=world.senior.user, password=PASSWORD)
    reading = world.assignment(Arm.SCP).reading
    with pytest.raises(rd.Locked, match="trial is locked"):
        rd.amend(reading, findings="x", impression="", reason="late",
                 by=world.readers[Arm.SCP].user, password=PASSWORD)
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
    signed = svc.sign(review, findings="SCP text.", impression="Normal.", version=0,
                      by=world.senior.user, password=PASSWORD, started_from="report2")
    assert Review.objects.get(pk=signed.pk).started_from == "report2"


def test_signing_needs_the_seniors_password_now_and_records_the_signature(
    world: ReadWorld,
) -> None:
    """21 CFR 11.200: the final report is signed by re-entering the password; a wrong or
    missing one signs nothing and is on the record; the signature has name, time, meaning."""
    world.senior.user.first_name, world.senior.user.last_name = "Ada", "Senior"
    world.senior.user.save()
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    review = svc.open_review(world.cases[0], senior=world.senior)
    for wrong in (None, "", "not-the-password", PASSWORD + " "):
        with pytest.raises(SignatureRefused, match="password"):
            svc.sign(review, findings="Final.", impression="Normal.", version=0,
                     by=world.senior.user, password=wrong)
    assert Review.objects.get(pk=review.pk).status == Review.Status.OPEN
    assert not Signature.objects.exists()
    refused = AuditEvent.objects.filter(action="signature.refused", object_id=str(review.pk))
    assert refused.count() == 4
    assert {e.after["meaning"] for e in refused} == {"final_report"}
    assert {e.actor_id for e in refused} == {world.senior.user.pk}

    signed = svc.sign(review, findings="Final.", impression="Normal.", version=0,
                      by=world.senior.user, password=PASSWORD)
    signature = Signature.objects.get()
    assert (signature.object_type, signature.object_id) == ("reader.Review", str(signed.pk))
    assert signature.printed_name == "Ada Senior"
    assert signature.meaning == Signature.Meaning.FINAL_REPORT and not signature.simulated
    assert signature.signer_id == world.senior.user.pk
    assert abs((signature.signed_at - signed.signed_at).total_seconds()) < 5
    assert "Final report approved" in str(signature) and "Ada Senior" in str(signature)
    assert AuditEvent.objects.filter(action="signature.made",
                                     object_id=str(signed.pk)).count() == 1


def test_a_refusal_that_needs_no_password_comes_first(world: ReadWorld) -> None:
    """A signed report or a locked trial is refused as such: no password asked, none recorded
    as refused."""
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    review = svc.open_review(world.cases[0], senior=world.senior)
    svc.sign(review, findings="Final.", impression="", version=0, by=world.senior.user,
             password=PASSWORD)
    with pytest.raises(rd.Locked, match="signed"):
        svc.sign(review, findings="Again.", impression="", version=1, by=world.senior.user,
                 password="wrong")
    assert not AuditEvent.objects.filter(action="signature.refused").exists()
    assert Signature.objects.count() == 1


def test_a_simulated_signature_says_so(world: ReadWorld) -> None:
    """The demo's simulation signs without a person: the signature is marked, never passed
    off as a person's."""
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    review = svc.open_review(world.cases[0], senior=world.senior)
    svc.sign(review, findings="Final.", impression="", version=0, by=world.senior.user,
             simulated=True)
    signature = Signature.objects.get()
    assert signature.simulated and "simulated, no password entered" in str(signature)


def test_the_admin_shows_the_signatures_with_the_signed_records(world: ReadWorld,
                                                               client) -> None:
    """A signature is shown wherever the signed record is: the review's and the reading's
    (amendment) admin pages."""
    _read_both(world, {Arm.AI_ASSISTED: "AI text.", Arm.SCP: "SCP text."})
    reading = world.assignment(Arm.SCP).reading
    reader = world.readers[Arm.SCP].user
    reader.first_name, reader.last_name = "Rhea", "Junior"
    reader.save()
    rd.amend(reading, findings="SCP text, amended.", impression="Normal.", reason="typo",
             by=reader, password=PASSWORD)
    review = svc.open_review(world.cases[0], senior=world.senior)
    svc.sign(review, findings="Final.", impression="", version=0, by=world.senior.user,
             password=PASSWORD)
    coordinator = Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user
    coordinator.is_staff = True
    coordinator.save()
    client.force_login(coordinator)
    page = client.get(f"/admin/reader/review/{review.pk}/change/").content.decode()
    assert "Electronic signature" in page and "Final report approved" in page
    page = client.get(f"/admin/reader/reading/{reading.pk}/change/").content.decode()
    assert "Rhea Junior" in page and "Amendment of a submitted report" in page
    assert "SCP text, amended." in page and "typo" in page  # the amendment's row itself
