"""What a reader or senior is sent about a case: one place, used by the pages and the API.

Everything that leaves the server for a reader or senior goes through these functions, so the
blinding rules live here: an SCP reading never carries draft content (its editor starts from
the template or blank, and no draft field exists in its payload); a senior sees the two junior
reports only as "Report 1" and "Report 2", without arm, reader or reading id. A reader is never
sent their reading time (nor active time, gaps or the reading's flags) during the trial.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse

from trial.dicom.viewer_pixels import viewer_meta
from trial.findings import FINDINGS
from trial.models import Arm, Assignment, Case, Membership
from trial.signatures import signature_payload

from .blinding import authorship_names, blind_text
from .models import Reading, Review
from .review import readings_shown


def assignment_at(reader: Membership, position: int) -> Assignment:
    """The reader's own assignment at ``position`` (404 otherwise: no one else's cases)."""
    return get_object_or_404(
        Assignment.objects.select_related("case__trial", "case__site"),
        reader=reader, position=position,
    )


def case_payload(case: Case) -> dict:
    """The case as a reader sees it: pseudonymous id, demographics, clinical history, images."""
    return {
        "case_id": case.case_id,
        "age": case.age,
        "sex": case.get_sex_display(),
        "chief_complaint": case.chief_complaint,
        "history": case.history,
        "lab_results": case.lab_results,
        "prior_imaging": case.prior_imaging,
        "images": [viewer_meta(image) for image in case.images.order_by("pk")],
    }


def reading_payload(assignment: Assignment, reading: Reading | None) -> dict:
    """A reader's view of one assigned case and their report."""
    trial = assignment.case.trial
    slug = trial.slug
    position = assignment.position
    payload = {
        "position": position,
        "arm": assignment.arm,
        "arm_label": trial.arm_label(assignment.arm),
        "case": case_payload(assignment.case),
        "findings_checklist": list(FINDINGS) if trial.findings_checklist else [],
        "status": "new" if reading is None else reading.status,
        "urls": {name: reverse(f"reader-reading-{name}", args=[slug, position])
                 for name in ("open", "events", "save", "submit", "amend")},
        "page": reverse("reader:case", args=[slug, position]),
    }
    if reading is None:
        return payload
    payload.update({
        "started_from": reading.started_from,
        "deviation": reading.deviation,
        "findings": reading.findings,
        "impression": reading.impression,
        "labels": reading.labels,
        "version": reading.version,
        # No clock: reading, active and gap times, the times they are counted from, and the
        # implausible-reading flags stay with the coordinator until the trial is analysed.
        "submitted_at": reading.submitted_at,
        "amendments": [
            {"at": a.at, "reason": a.reason, "signature": signature_payload(a)}
            for a in reading.amendments.order_by("at")
        ],
    })
    # Only an AI-arm reading that opened with a draft says so (the banner of the editor).
    # The draft's text is the editor's starting text; no other draft field is ever sent.
    if assignment.arm == Arm.AI_ASSISTED and reading.started_from == Reading.Start.DRAFT:
        payload["ai_draft"] = {"findings": reading.draft.findings,
                               "impression": reading.draft.impression}
    return payload


def review_payload(review: Review) -> dict:
    """A senior's view: the case, Report 1 and Report 2 (no arm, no reader), the final text."""
    case = review.case
    # The junior texts as a rater would see them: a signature, a model marker or a name left in
    # a report would tell the senior which arm wrote it.
    names = authorship_names(case.trial)
    return {
        "case_pk": case.pk,
        "case": case_payload(case),
        "reports": [
            {"label": f"Report {i}", "key": f"report{i}",
             "findings": blind_text(r.findings, names=names)[0],
             "impression": blind_text(r.impression, names=names)[0]}
            for i, r in enumerate(readings_shown(review), 1)
        ],
        "status": review.status,
        "started_from": review.started_from,
        "findings": review.findings,
        "impression": review.impression,
        "version": review.version,
        # No clock, as for the readers: the review time and when it is counted from stay with
        # the coordinator and the analysis.
        "signed_at": review.signed_at,
        "signature": signature_payload(review),
        "urls": {name: reverse(f"senior-review-{name}", args=[case.trial.slug, case.pk])
                 for name in ("open", "save", "sign")},
        "page": reverse("reader:review", args=[case.trial.slug, case.pk]),
    }
