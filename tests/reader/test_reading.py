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


def test_an_open_reading_takes_no_heartbeat_or_autosave_once_the_trial_is_locked(
        world: ReadWorld) -> None:
    """The one-statement heartbeat and autosave check the trial's lock in that statement."""
    opened = svc.open_reading(world.assignment(Arm.SCP), user=None)
    svc.autosave(opened, findings="Before the lock.", impression="", version=opened.version)
    before = Reading.objects.get(pk=opened.pk)
    events = ReadingEvent.objects.filter(reading=opened).count()
    world.trial.status = Trial.Status.LOCKED
    world.trial.save()
    with pytest.raises(svc.Locked, match="trial is locked"):
        svc.record_event(opened, ReadingEvent.Kind.HEARTBEAT)
    with pytest.raises(svc.Locked, match="trial is locked"):
        svc.autosave(opened, findings="After the lock.", impression="", version=before.version)
    after = Reading.objects.get(pk=opened.pk)
    assert (after.findings, after.version, after.last_event_at) == (
        "Before the lock.", before.version, before.last_event_at)
    assert ReadingEvent.objects.filter(reading=opened).count() == events
