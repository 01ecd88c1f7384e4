"""The reading service: what each arm's editor starts from, the clock, autosave, lock, amend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from drafting.models import Draft
from reader import reading as svc
from reader.models import Reading, ReadingEvent
from tests.support.factories import PASSWORD
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent, Signature, Trial
from trial.signatures import SignatureRefused

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path)


def test_ai_arm_reading_starts_from_the_cases_ai_draft(world: ReadWorld) -> None:
    assignment = world.assignment(Arm.AI_ASSISTED)
    draft = Draft.objects.get(case=assignment.case)
    reading = svc.open_reading(assignment, user=None)
    assert reading.started_from == Reading.Start.DRAFT and reading.draft == draft
    assert (reading.findings, reading.impression) == (draft.findings, draft.impression)
    assert reading.findings


def test_scp_arm_reading_starts_blank_and_never_links_a_draft(world: ReadWorld) -> None:
    reading = svc.open_reading(world.assignment(Arm.SCP), user=None)
    assert reading.draft is None
    assert (reading.findings, reading.impression) == ("", "")
    assert reading.started_from == Reading.Start.BLANK  # the default template has no text


def test_scp_arm_starts_from_a_template_with_text(tmp_path) -> None:
    world = build_read_world(tmp_path, report_template="FINDINGS: Heart: \nIMPRESSION: ")
    reading = svc.open_reading(world.assignment(Arm.SCP), user=None)
    assert reading.started_from == Reading.Start.TEMPLATE
    assert reading.findings == "Heart:"


def test_ai_arm_case_without_a_ready_draft_is_held_back(tmp_path) -> None:
    world = build_read_world(tmp_path, endpoint=False)
    with pytest.raises(svc.NotReady, match="not made yet"):
        svc.open_reading(world.assignment(Arm.AI_ASSISTED), user=None)
    assert not Reading.objects.exists()


def test_offering_without_a_draft_records_a_protocol_deviation(tmp_path) -> None:
    world = build_read_world(tmp_path, endpoint=False, offer_without_draft=True)
    reading = svc.open_reading(world.assignment(Arm.AI_ASSISTED), user=None)
    assert reading.deviation.startswith("Offered without its AI draft")
    assert reading.draft is None and reading.findings == ""


def test_reopening_resumes_the_same_reading_and_records_the_gap(world: ReadWorld) -> None:
    assignment = world.assignment(Arm.SCP)
    first = svc.open_reading(assignment, user=None)
    Reading.objects.filter(pk=first.pk).update(
        last_event_at=timezone.now() - timedelta(seconds=40)
    )
    again = svc.open_reading(assignment, user=None)
    assert again.pk == first.pk
    resumed = again.events.get(kind=ReadingEvent.Kind.RESUMED)
    assert resumed.detail["gap_s"] == pytest.approx(40, abs=1)


def test_autosave_refuses_a_stale_version(world: ReadWorld) -> None:
    reading = svc.open_reading(world.assignment(Arm.SCP), user=None)
    saved = svc.autosave(reading, findings="a", impression="b", version=0)
    assert saved.version == 1
    with pytest.raises(svc.StaleVersion) as stale:
        svc.autosave(reading, findings="old tab", impression="", version=0)
    assert stale.value.current == 1
    assert Reading.objects.get(pk=reading.pk).findings == "a"


def test_a_late_save_of_the_stored_text_is_not_stale(world: ReadWorld) -> None:
    """A page reloaded before its predecessor's last save landed sends that same text again,
    based on the older version: it is already stored, so it is accepted as a no-op."""
    reading = svc.open_reading(world.assignment(Arm.SCP), user=None)
    svc.autosave(reading, findings="a", impression="b", version=0)
    again = svc.autosave(reading, findings="a", impression="b", version=0)
    assert again.version == 1
    assert reading.events.filter(kind=ReadingEvent.Kind.AUTOSAVE).count() == 1
    with pytest.raises(svc.StaleVersion):
        svc.autosave(reading, findings="a, then more", impression="b", version=0)


def test_submit_locks_and_times_from_the_first_image(world: ReadWorld) -> None:
    reading = svc.open_reading(world.assignment(Arm.SCP), user=None)
    svc.record_event(reading, ReadingEvent.Kind.IMAGE_DISPLAYED)
    first_image = Reading.objects.get(pk=reading.pk).first_image_at
    done = svc.submit(reading, findings="Clear lungs.", impression="Normal.", version=0)
    assert done.status == Reading.Status.SUBMITTED
    assert done.reading_time_s == pytest.approx(
        (done.submitted_at - first_image).total_seconds()
    )
    with pytest.raises(svc.Locked):
        svc.autosave(done, findings="x", impression="y", version=done.version)
    assert AuditEvent.objects.filter(action="reading.submitted", object_id=str(done.pk)).exists()


def test_an_empty_report_cannot_be_submitted(world: ReadWorld) -> None:
    reading = svc.open_reading(world.assignment(Arm.SCP), user=None)
    with pytest.raises(svc.ReadingError, match="empty"):
        svc.submit(reading, findings=" ", impression="", version=0)
    assert Reading.objects.get(pk=reading.pk).status == Reading.Status.OPEN


def test_amendment_needs_a_reason_keeps_the_original_and_is_audited(world: ReadWorld) -> None:
    reading = svc.open_reading(world.assignment(Arm.SCP), user=None)
    done = svc.submit(reading, findings="Original.", impression="Imp.", version=0)
    user = world.readers[Arm.SCP].user
    with pytest.raises(svc.ReadingError, match="reason"):
        svc.amend(done, findings="New.", impression="Imp.", reason=" ", by=user)
    with pytest.raises(SignatureRefused):
        svc.amend(done, findings="New.", impression="Imp.", reason="typo", by=user,
                  password="wrong-password")
    assert Reading.objects.get(pk=done.pk).findings == "Original."
    assert not done.amendments.exists() and not Signature.objects.exists()
    assert AuditEvent.objects.get(action="signature.refused").after == {"meaning": "amendment"}
    amendment = svc.amend(done, findings="New.", impression="Imp.", reason="typo", by=user,
                          password=PASSWORD)
    assert amendment.before_findings == "Original." and amendment.after_findings == "New."
    assert Reading.objects.get(pk=done.pk).findings == "New."
    event = AuditEvent.objects.get(action="reading.amended")
    assert event.before["findings"] == "Original." and event.after["reason"] == "typo"
    signature = Signature.objects.get()
    assert (signature.meaning, signature.signer_id) == (Signature.Meaning.AMENDMENT, user.pk)
    assert signature.object_id == str(amendment.pk) and signature.printed_name


def _events(start, spec):
    """ReadingEvent objects (unsaved) at start + seconds."""
    return [ReadingEvent(kind=kind, at=start + timedelta(seconds=s), pk=i)
            for i, (s, kind) in enumerate(spec, 1)]


def test_active_time_excludes_hidden_and_blurred_stretches() -> None:
    start = timezone.now()
    K = ReadingEvent.Kind
    events = _events(start, [(10, K.HIDDEN), (25, K.VISIBLE), (30, K.BLUR), (33, K.FOCUS)])
    active, gap = svc.timing(events, start=start, end=start + timedelta(seconds=40))
    assert active == pytest.approx(10 + 5 + 7)  # 0-10, 25-30, 33-40
    assert gap == 0


def test_a_silence_longer_than_liveness_is_a_gap_not_active_time() -> None:
    start = timezone.now()
    K = ReadingEvent.Kind
    events = _events(start, [(5, K.HEARTBEAT), (105, K.RESUMED), (110, K.AUTOSAVE)])
    active, gap = svc.timing(events, start=start, end=start + timedelta(seconds=112))
    assert gap == pytest.approx(100)
    assert active == pytest.approx(5 + 5 + 2)


def _row(opened: Reading, by_seat: bool) -> tuple[object, dict]:
    """The reading as the service is given it: itself, or the API's (reader, position) seat
    with the look-up the full path falls back to."""
    if not by_seat:
        return opened, {}
    assignment = opened.assignment
    return (assignment.reader, assignment.position), {
        "find": lambda: Reading.objects.get(pk=opened.pk)}


@pytest.mark.parametrize("by_seat", [False, True], ids=["reading", "seat"])
def test_an_open_reading_takes_no_heartbeat_or_autosave_once_the_trial_is_locked(
        world: ReadWorld, by_seat: bool) -> None:
    """The one-statement heartbeat and autosave check the trial's lock in that statement."""
    opened = svc.open_reading(world.assignment(Arm.SCP), user=None)
    row, find = _row(opened, by_seat)
    svc.autosave(row, findings="Before the lock.", impression="", version=opened.version, **find)
    before = Reading.objects.get(pk=opened.pk)
    events = ReadingEvent.objects.filter(reading=opened).count()
    world.trial.status = Trial.Status.LOCKED
    world.trial.save()
    with pytest.raises(svc.Locked, match="trial is locked"):
        svc.record_event(row, ReadingEvent.Kind.HEARTBEAT, **find)
    with pytest.raises(svc.Locked, match="trial is locked"):
        svc.autosave(row, findings="After the lock.", impression="", version=before.version,
                     **find)
    after = Reading.objects.get(pk=opened.pk)
    assert (after.findings, after.version, after.last_event_at) == (
        "Before the lock.", before.version, before.last_event_at)
    assert ReadingEvent.objects.filter(reading=opened).count() == events


@pytest.mark.parametrize("by_seat", [False, True], ids=["reading", "seat"])
def test_heartbeat_and_autosave_store_in_one_statement_or_say_why_not(
        world: ReadWorld, by_seat: bool) -> None:
    """Each outcome of the hot paths, for the reading itself and for the API's seat: stored
    (text, labels, version, time, event); the same text again (no new version, no event);
    other labels only; a stale version (409 with the stored one); a submitted report."""
    K = ReadingEvent.Kind
    opened = svc.open_reading(world.assignment(Arm.SCP), user=None)
    row, find = _row(opened, by_seat)
    looked_up = []
    if find:
        find = {"find": lambda: looked_up.append(1) or Reading.objects.get(pk=opened.pk)}

    beat = svc.record_event(row, K.HEARTBEAT, **find)
    stored = Reading.objects.get(pk=opened.pk)
    assert beat.pk == opened.pk and beat.last_event_at == stored.last_event_at > opened.opened_at
    assert opened.events.filter(kind=K.HEARTBEAT).count() == 1

    saved = svc.autosave(row, findings="Clear lungs.", impression="Normal.", version=0,
                         labels=["No Finding", "No Finding"], **find)
    stored = Reading.objects.get(pk=opened.pk)
    assert (stored.findings, stored.impression, stored.labels, stored.version) == (
        "Clear lungs.", "Normal.", ["No Finding"], 1)
    assert (saved.pk, saved.version, saved.findings) == (opened.pk, 1, "Clear lungs.")
    assert saved.last_event_at == stored.last_event_at
    assert opened.events.filter(kind=K.AUTOSAVE).get().detail == {"version": 1}
    assert not looked_up  # both in one statement, no look-up

    same = svc.autosave(row, findings="Clear lungs.", impression="Normal.", version=1,
                        labels=["No Finding"], **find)
    assert same.version == 1 and Reading.objects.get(pk=opened.pk).version == 1
    assert opened.events.filter(kind=K.AUTOSAVE).count() == 1

    relabelled = svc.autosave(row, findings="Clear lungs.", impression="Normal.", version=1,
                              labels=["Cardiomegaly"], **find)
    stored = Reading.objects.get(pk=opened.pk)
    assert relabelled.version == stored.version == 2 and stored.labels == ["Cardiomegaly"]

    with pytest.raises(svc.StaleVersion) as stale:
        svc.autosave(row, findings="An old tab.", impression="", version=1, **find)
    assert stale.value.current == 2
    assert Reading.objects.get(pk=opened.pk).findings == "Clear lungs."

    svc.submit(Reading.objects.get(pk=opened.pk), findings="Clear lungs.",
               impression="Normal.", version=2)
    with pytest.raises(svc.Locked, match="submitted"):
        svc.record_event(row, K.HEARTBEAT, **find)
    with pytest.raises(svc.Locked, match="submitted"):
        svc.autosave(row, findings="After submission.", impression="", version=2, **find)
    assert Reading.objects.get(pk=opened.pk).findings == "Clear lungs."
    assert opened.events.filter(kind=K.HEARTBEAT).count() == 1
