"""Tidy tables from the trial's database: one row per rating value, one row per reading.

These are what the statistics (``analysis.stats``, no Django) and the exports work on, so
every column has one meaning everywhere (DESIGN.md's names: trial, campaign, case, site, arm,
reader, rater, instrument). Pair instruments are resolved here: the rater's "A"/"B" becomes
the source of the report they chose, through the sides stored for that rater.
"""

from __future__ import annotations

import pandas as pd

from reader.campaigns import shown_reports
from reader.models import Reading, Review
from reader.rating_models import Campaign, RaterItem
from reader.review import edit_distance, report_text
from trial.models import Arm, Trial

RATING_COLUMNS = [
    "trial", "campaign", "campaign_kind", "item_code", "case", "site", "item_kind", "source",
    "other_source", "arm", "reader", "rater", "instrument", "answer", "value", "seconds",
]
READING_COLUMNS = [
    "trial", "case", "site", "arm", "reader", "status", "reading_seconds", "active_seconds",
    "gap_seconds", "findings_ticked", "n_findings", "complex_case", "draft_used",
    "edit_distance_from_draft", "senior_edit_distance",
]
NO_FINDING = "No Finding"
COMPLEX_AT = 3  # PROTOCOL.md: >= 3 imaging manifestations


def _number(value: object) -> object:
    try:
        return float(value)  # Likert, RADPEER 1-5: numbers; ACR "2a", "A"/"B": kept as text
    except (TypeError, ValueError):
        return value


def ratings(trial: Trial, *, campaign: Campaign | None = None) -> pd.DataFrame:
    """One row per submitted rating value (error counts: one row per type and significance)."""
    rater_items = (RaterItem.objects.filter(campaign__trial=trial, rating__isnull=False)
                   .select_related("campaign", "item__case__site", "item__report__reading",
                                   "item__other", "rater__user", "rating",
                                   "item__report__reading__assignment__reader__user")
                   .order_by("campaign", "rater", "position"))
    if campaign is not None:
        rater_items = rater_items.filter(campaign=campaign)
    rows = []
    for ri in rater_items:
        item, case = ri.item, ri.item.case
        source = item.report.source
        reading = item.report.reading
        base = {
            "trial": trial.slug, "campaign": ri.campaign.pk,
            "campaign_kind": ri.campaign.kind, "item_code": ri.code, "case": case.case_id,
            "site": case.site.code, "item_kind": item.kind, "source": source,
            "other_source": item.other.source if item.other_id else None,
            "arm": source if source in (Arm.AI_ASSISTED, Arm.SCP) and not item.other_id
            else None,
            "reader": (reading.assignment.reader.user.get_username()
                       if reading is not None and not item.other_id else None),
            "rater": ri.rater.user.get_username(), "seconds": ri.rating.seconds,
        }
        shown = shown_reports(ri) if item.other_id else None
        for instrument, answer in ri.rating.values.items():
            if isinstance(answer, dict):  # error counts
                for error_type, counts in answer.items():
                    for significance, count in counts.items():
                        rows.append({**base, "instrument": f"errors.{error_type}.{significance}",
                                     "answer": count, "value": float(count)})
                continue
            value = _number(answer)
            if shown is not None and answer in ("A", "B"):
                value = shown[0 if answer == "A" else 1].source
            rows.append({**base, "instrument": instrument, "answer": answer, "value": value})
    return pd.DataFrame(rows, columns=RATING_COLUMNS)


def readings(trial: Trial) -> pd.DataFrame:
    """One row per reading (open ones too, with status; times only once submitted)."""
    senior = {r.case_id: r for r in Review.objects.filter(case__trial=trial,
                                                          status=Review.Status.SIGNED)}
    rows = []
    queryset = (Reading.objects.filter(assignment__case__trial=trial)
                .select_related("assignment__case__site", "assignment__reader__user", "draft")
                .order_by("assignment__case__case_id", "assignment__arm"))
    for reading in queryset:
        assignment = reading.assignment
        labels = [label for label in reading.labels if label != NO_FINDING]
        review = senior.get(assignment.case_id)
        distance = None
        if review is not None:
            distance = (review.edit_distance_ai if assignment.arm == Arm.AI_ASSISTED
                        else review.edit_distance_scp)
        from_draft = None
        if reading.draft is not None and reading.status == Reading.Status.SUBMITTED:
            from_draft = edit_distance(
                report_text(reading.draft.findings, reading.draft.impression),
                report_text(reading.findings, reading.impression))
        rows.append({
            "trial": trial.slug, "case": assignment.case.case_id,
            "site": assignment.case.site.code, "arm": assignment.arm,
            "reader": assignment.reader.user.get_username(), "status": reading.status,
            "reading_seconds": reading.reading_time_s, "active_seconds": reading.active_time_s,
            "gap_seconds": reading.gap_s if reading.status == Reading.Status.SUBMITTED else None,
            "findings_ticked": ";".join(sorted(reading.labels)), "n_findings": len(labels),
            "complex_case": len(labels) >= COMPLEX_AT,
            "draft_used": reading.started_from == Reading.Start.DRAFT,
            "edit_distance_from_draft": from_draft, "senior_edit_distance": distance,
        })
    return pd.DataFrame(rows, columns=READING_COLUMNS)
