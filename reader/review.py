"""Senior review: once both readings of a case are submitted, a senior writes the final report.

The two junior reports are shown as Report 1 and Report 2 in a random order stored with the
review, never with their arm. Signing locks the final report (it becomes the reference for
the ratings) and stores the senior's time and the edit distance from each junior report to
the final one: how much work each arm's report left for the senior.
"""

from __future__ import annotations

import secrets
from typing import Any

import django.dispatch
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from trial import audit, signatures
from trial.lifecycle import is_locked
from trial.models import Arm, Case, Membership, Signature, Trial

from .models import Reading, Review
from .reading import Locked, ReadingError, StaleVersion, check_not_withdrawn
from .texts import edit_distance, report_text

# Sent when a sign-off commits (``review``, ``by``): the hook for sending the final report on
# (``pacs`` connects to it from its ``AppConfig.ready()``).
review_signed = django.dispatch.Signal()


def reviewable_cases(senior: Membership) -> QuerySet[Case]:
    """Cases of the senior's trial (and site, if they have one) ready for or in their review."""
    cases = Case.objects.filter(trial=senior.trial).annotate(
        submitted=Count("assignments__reading",
                        filter=Q(assignments__reading__status=Reading.Status.SUBMITTED))
    ).filter(submitted=2).filter(Q(review__isnull=True) | Q(review__senior=senior))
    # A withdrawn case is offered to nobody: only a final report signed before stays listed.
    cases = cases.filter(~Q(status=Case.Status.WITHDRAWN) | Q(review__status=Review.Status.SIGNED))
    # Someone who read the case (a senior may also be a reader) would know the arms: not theirs.
    cases = cases.exclude(assignments__reader__user_id=senior.user_id)
    if senior.site_id:
        cases = cases.filter(site=senior.site_id)
    return cases.order_by("case_id")


def readings_of(case: Case) -> dict[str, Reading]:
    """The submitted readings of ``case`` by arm."""
    readings = Reading.objects.filter(assignment__case=case, status=Reading.Status.SUBMITTED)
    return {r.assignment.arm: r for r in readings.select_related("assignment")}


def open_review(case: Case, *, senior: Membership) -> Review:
    """The senior's review of ``case``, created on first open with a random report order."""
    with transaction.atomic():
        Case.objects.select_for_update().get(pk=case.pk)
        review = Review.objects.filter(case=case).first()
        if review is not None:
            if review.senior_id != senior.pk:
                raise ReadingError("Another senior is reviewing this case.")
            return review
        if is_locked(case.trial_id):
            raise Locked("The trial is locked: no review can start.")
        if not reviewable_cases(senior).filter(pk=case.pk).exists():
            raise ReadingError("This case is not ready for review (both readings submitted).")
        pks = [r.pk for r in readings_of(case).values()]
        secrets.SystemRandom().shuffle(pks)
        review = Review.objects.create(case=case, senior=senior, order=pks,
                                       opened_at=timezone.now())
        audit.record(action="review.opened", obj=review, actor=senior.user, trial=case.trial)
        return review


def readings_shown(review: Review) -> list[Reading]:
    """The junior readings in the order shown to the senior (Report 1, Report 2)."""
    by_pk = Reading.objects.in_bulk(review.order)
    return [by_pk[pk] for pk in review.order]


def _locked(review: Review, version: int | None) -> Review:
    """The review, row-locked; refused when signed, in a locked trial, or (with ``version``)
    when another tab saved since."""
    locked = Review.objects.select_for_update().select_related("case__trial").get(pk=review.pk)
    _check_open(locked, version)
    return locked


def _check_open(review: Review, version: int | None) -> None:
    if review.case.trial.status == Trial.Status.LOCKED:
        raise Locked("The trial is locked.")
    check_not_withdrawn(review.case)
    if review.status != Review.Status.OPEN:
        raise Locked("The final report is signed.")
    if version is not None and version != review.version:
        raise StaleVersion(review.version)


def save_review(review: Review, *, findings: str, impression: str, version: int,
                started_from: str | None = None) -> Review:
    with transaction.atomic():
        locked = _locked(review, None)
        if ((locked.findings, locked.impression) == (findings, impression)
                and (started_from is None or locked.started_from)):
            return locked  # already stored (a closing page's save that landed late)
        if version != locked.version:
            raise StaleVersion(locked.version)
        locked.findings, locked.impression = findings, impression
        if started_from is not None and not locked.started_from:
            locked.started_from = started_from
        locked.version += 1
        locked.save(update_fields=["findings", "impression", "started_from", "version"])
    return locked


def sign(review: Review, *, findings: str, impression: str, version: int, by: Any,
         password: str | None = None, started_from: str | None = None,
         simulated: bool = False) -> Review:
    """Lock the final report, signed electronically: ``by`` re-enters ``password`` now
    (``trial.signatures``; ``simulated`` only for the demo's simulation). Stores the senior's
    time and the edit distances. ``started_from`` as in ``save_review``: a sign-off right
    after "Start from", before any autosave, keeps it."""
    if not (findings.strip() or impression.strip()):
        raise ReadingError("The final report is empty.")
    meaning = Signature.Meaning.FINAL_REPORT
    # Refusals that need no password first (a locked trial, a signed report, a stale tab);
    # then a wrong password is refused, and recorded, before anything changes.
    _check_open(Review.objects.select_related("case__trial").get(pk=review.pk), version)
    if not simulated:
        signatures.verify(by, password, meaning=meaning, obj=review, trial=review.case.trial)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(review, version)
        locked.findings, locked.impression = findings, impression
        if started_from is not None and not locked.started_from:
            locked.started_from = started_from
        final = report_text(findings, impression)
        by_arm = readings_of(locked.case)
        locked.edit_distance_ai = edit_distance(
            report_text(by_arm[Arm.AI_ASSISTED].findings, by_arm[Arm.AI_ASSISTED].impression),
            final)
        locked.edit_distance_scp = edit_distance(
            report_text(by_arm[Arm.SCP].findings, by_arm[Arm.SCP].impression), final)
        locked.status, locked.signed_at = Review.Status.SIGNED, now
        locked.review_time_s = (now - locked.opened_at).total_seconds()
        locked.version += 1
        locked.save()
        audit.record(action="review.signed", obj=locked, actor=by, trial=locked.case.trial,
                     after={"review_time_s": locked.review_time_s,
                            "edit_distance_ai": locked.edit_distance_ai,
                            "edit_distance_scp": locked.edit_distance_scp})
        signatures.sign(by, password, meaning=meaning, obj=locked, trial=locked.case.trial,
                        simulated=simulated)
        transaction.on_commit(
            lambda: review_signed.send(sender=Review, review=locked, by=by), robust=True)
    return locked


def review_items(senior: Membership) -> list[dict]:
    """The senior's cases (ready, open or signed), for their list and the API."""
    cases = reviewable_cases(senior).select_related("review")
    items = []
    for case in cases:
        review = getattr(case, "review", None)
        items.append({"case_pk": case.pk, "case_id": case.case_id,
                      "status": review.status if review else "ready"})
    return items
