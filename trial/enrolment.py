"""Screening, eligibility, consent and enrolment of cases (the CONSORT flow starts here).

Each function locks the case row and re-reads it, so the status it checks is the one it
changes, and writes its audit event (status before/after) in the same transaction. Excluded
cases keep their answers and reason for the CONSORT flow diagram. Callers check permissions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import django.dispatch
from django.db import transaction
from django.utils import timezone

from . import audit
from .errors import Conflict
from .models import Case, EligibilityCriterion, Trial

#: Sent after the enrolment has been committed, with ``case`` and ``by``. The hook point for
#: queueing the AI draft (a later issue); nothing listens to it yet.
case_enrolled = django.dispatch.Signal()


class EnrolmentError(Conflict):
    """A case cannot move to the asked status (409); the message says why."""


def _criteria(trial: Trial) -> list[EligibilityCriterion]:
    """Inclusion criteria first, then exclusion, each in the coordinator's order."""
    inclusion = EligibilityCriterion.Kind.INCLUSION
    return sorted(trial.criteria.all(), key=lambda c: (c.kind != inclusion, c.order, c.code))


def evaluate_eligibility(case: Case, answers: Mapping[str, bool]) -> tuple[bool, list[str]]:
    """(eligible, reasons): every inclusion criterion True and every exclusion criterion False.

    A missing (or non-boolean) answer is a reason too: eligibility is never assumed.
    Answers for codes the trial does not have are ignored here (``screen`` refuses them).
    """
    reasons = []
    for criterion in _criteria(case.trial):
        answer = answers.get(criterion.code)
        if not isinstance(answer, bool):
            reasons.append(f"not answered: {criterion.text}")
        elif criterion.kind == EligibilityCriterion.Kind.INCLUSION and not answer:
            reasons.append(f"inclusion not met: {criterion.text}")
        elif criterion.kind == EligibilityCriterion.Kind.EXCLUSION and answer:
            reasons.append(f"exclusion applies: {criterion.text}")
    return not reasons, reasons


def _locked(case: Case, *expected: str) -> Case:
    locked = Case.objects.select_for_update().select_related("trial").get(pk=case.pk)
    if locked.trial.status == Trial.Status.LOCKED:
        raise EnrolmentError(f"trial {locked.trial.slug!r} is locked; case {locked} is frozen")
    if expected and locked.status not in expected:
        raise EnrolmentError(
            f"case {locked} is {locked.get_status_display().lower()}; expected "
            + " or ".join(Case.Status(s).label.lower() for s in expected)
        )
    return locked


def _sync(case: Case, locked: Case, *fields: str) -> Case:
    """Copy the changed fields onto the caller's instance, so it is not left stale."""
    for name in fields:
        setattr(case, name, getattr(locked, name))
    return locked


def _record(action: str, case: Case, by: Any, before: dict, after: dict) -> None:
    audit.record(action=action, obj=case, actor=by, trial=case.trial, before=before, after=after)


def screen(case: Case, *, answers: dict[str, bool], by) -> Case:
    """Store the screening answers; an ineligible case becomes EXCLUDED with its reasons.

    A screened case may be screened again (answers corrected) until it is enrolled or excluded.
    """
    with transaction.atomic():
        locked = _locked(case, Case.Status.SCREENED)
        known = {c.code for c in _criteria(locked.trial)}
        if not known:
            raise EnrolmentError(f"trial {locked.trial.slug!r} has no eligibility criteria: add "
                                 "them on the trial's page before screening")
        unknown = sorted(set(answers) - known)
        if unknown:
            raise EnrolmentError(f"unknown criterion code(s) {unknown}; expected some of "
                                 f"{sorted(known)}")
        not_bool = {k: v for k, v in answers.items() if not isinstance(v, bool)}
        if not_bool:
            raise EnrolmentError(f"answers must be true or false; got {not_bool}")
        eligible, reasons = evaluate_eligibility(locked, answers)
        before = {"status": locked.status, "eligibility_answers": locked.eligibility_answers}
        locked.eligibility_answers = dict(answers)
        locked.save(update_fields=["eligibility_answers"])
        _record("case.screened", locked, by, before, {
            "status": locked.status, "eligibility_answers": locked.eligibility_answers,
            "eligible": eligible, "reasons": reasons,
        })
        if not eligible:
            _exclude(locked, "; ".join(reasons), by)
    return _sync(case, locked, "eligibility_answers", "status", "exclusion_reason")


def _exclude(locked: Case, reason: str, by: Any) -> None:
    before = {"status": locked.status, "exclusion_reason": locked.exclusion_reason}
    locked.status, locked.exclusion_reason = Case.Status.EXCLUDED, reason
    locked.save(update_fields=["status", "exclusion_reason"])
    _record("case.excluded", locked, by, before,
            {"status": locked.status, "exclusion_reason": reason})


def record_consent(case: Case, *, by) -> Case:
    """Record that written informed consent was obtained (who and when), once."""
    with transaction.atomic():
        locked = _locked(case, Case.Status.SCREENED)
        if locked.consent_recorded_at is not None:
            raise EnrolmentError(f"consent for case {locked} was already recorded at "
                                 f"{locked.consent_recorded_at:%Y-%m-%d %H:%M}")
        locked.consent_recorded_by = by if getattr(by, "pk", None) else None
        locked.consent_recorded_at = timezone.now()
        locked.save(update_fields=["consent_recorded_by", "consent_recorded_at"])
        _record("case.consent_recorded", locked, by, {"consent_recorded_at": None},
                {"consent_recorded_at": locked.consent_recorded_at.isoformat(),
                 "consent_recorded_by": getattr(by, "pk", None)})
    return _sync(case, locked, "consent_recorded_by", "consent_recorded_at")


def missing_for_enrolment(case: Case) -> list[str]:
    """What a screened case still lacks before it can be enrolled (empty when nothing)."""
    missing = []
    if not case.eligibility_answers:
        missing.append("screening answers (the case has not been screened)")
    else:
        eligible, reasons = evaluate_eligibility(case, case.eligibility_answers)
        if not eligible:
            missing.append("eligibility (" + "; ".join(reasons) + ")")
    if case.consent_recorded_at is None:
        missing.append("informed consent (not recorded)")
    for field, label in [("chief_complaint", "chief complaint"), ("history", "history"),
                         ("lab_results", "laboratory results")]:
        if not getattr(case, field).strip():
            missing.append(f"clinical record: {label} is empty")
    if not case.images.exists():
        missing.append("images (none imported)")
    return missing


def enrol(case: Case, *, by) -> Case:
    """SCREENED -> ENROLLED when eligible, consented, complete record and at least one image.

    On commit, ``case_enrolled`` is sent: the hook for queueing the AI draft.
    """
    with transaction.atomic():
        locked = _locked(case, Case.Status.SCREENED)
        missing = missing_for_enrolment(locked)
        if missing:
            raise EnrolmentError(f"cannot enrol case {locked}; missing: " + "; ".join(missing))
        locked.status, locked.enrolled_at = Case.Status.ENROLLED, timezone.now()
        locked.save(update_fields=["status", "enrolled_at"])
        _record("case.enrolled", locked, by, {"status": Case.Status.SCREENED},
                {"status": locked.status, "enrolled_at": locked.enrolled_at.isoformat()})
        if locked.trial.assign_on_enrolment:
            transaction.on_commit(lambda: _assign_now(locked, by), robust=True)
        transaction.on_commit(
            lambda: case_enrolled.send(sender=Case, case=locked, by=by), robust=True
        )
    return _sync(case, locked, "status", "enrolled_at")


def _assign_now(case: Case, by) -> None:
    """The trial's "assign each case on enrolment", once the enrolment is committed (in its own
    transaction, which takes the trial's lock first as Assign cases does: no lock-order
    deadlock with it). When it cannot (no reader allocated in an arm yet), the enrolment stands
    and the case waits for Assign cases, with the reason on the record."""
    from trial.assignment import AssignmentError, assign_case  # assignment imports enrolment

    try:
        assign_case(case, by=by)
    except AssignmentError as exc:
        _record("case.assignment_deferred", case, by, {}, {"reason": str(exc)})


def exclude(case: Case, *, reason: str, by) -> Case:
    """Exclude a screened case by hand; the reason is required (it is counted for CONSORT)."""
    reason = (reason or "").strip()
    if not reason:
        raise EnrolmentError(f"a reason is required to exclude case {case}; got none")
    with transaction.atomic():
        locked = _locked(case, Case.Status.SCREENED)
        _exclude(locked, reason, by)
    return _sync(case, locked, "status", "exclusion_reason")


def withdraw(case: Case, *, reason: str, by) -> Case:
    """ENROLLED -> WITHDRAWN (final): the patient withdrew consent, or the case should never
    have been enrolled. The reason is required (CONSORT counts it). From then on nobody is
    offered the case: no reading starts or is submitted, no senior review, no rating item;
    what was recorded before stays, and the analysis leaves the case out."""
    reason = (reason or "").strip()
    if not reason:
        raise EnrolmentError(f"a reason is required to withdraw case {case}; got none")
    with transaction.atomic():
        locked = _locked(case, Case.Status.ENROLLED)
        locked.status, locked.withdrawn_at = Case.Status.WITHDRAWN, timezone.now()
        locked.withdrawal_reason = reason
        locked.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])
        _record("case.withdrawn", locked, by, {"status": Case.Status.ENROLLED},
                {"status": locked.status, "withdrawn_at": locked.withdrawn_at.isoformat(),
                 "withdrawal_reason": reason})
    return _sync(case, locked, "status", "withdrawn_at", "withdrawal_reason")
