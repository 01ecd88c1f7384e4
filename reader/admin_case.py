"""The case page's "Readings" and "Senior review" panels (registered on ``trial``'s
``CaseAdmin`` from ``ReaderConfig.ready``): who reads the case in which arm and how far each
reading is, and the review's status. Statuses and links only, never the report texts.

Read-only HTML; no admin module is imported here (``apps`` registers the panels).
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from trial.models import Assignment, Case

from .models import Reading, Review


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


def _arm(case: Case, arm: str) -> str:
    return format_html('<span class="arm" data-arm="{}">{}</span>', arm, case.trial.arm_label(arm))


def _reading_status(reading: Reading | None) -> str:
    if reading is None:
        return format_html('<span class="reading-status" data-status="{}">{}</span>',
                           "not_opened", "not opened")
    when = (f"submitted {_when(reading.submitted_at)}" if reading.status == Reading.Status.SUBMITTED
            else f"opened {_when(reading.opened_at)}")
    link = reverse("admin:reader_reading_change", args=[reading.pk])
    return format_html('<a class="reading-status" data-status="{}" href="{}">{}</a> ({})',
                       reading.status, link, reading.get_status_display(), when)


def readings_panel(case: Case) -> str:
    """One row per assignment: reader, arm, worklist position, the reading's status."""
    rows = list(Assignment.objects.filter(case=case).select_related("reader__user")
                .order_by("arm"))
    if not rows:
        return "Not assigned to readers yet."
    readings = {r.assignment_id: r for r in Reading.objects.filter(assignment__in=rows)}
    # The arm once per row (its code in ``data-arm``): the concealment test counts arm codes.
    body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
        (row.reader.user.get_username(), _arm(case, row.arm), row.position,
         _reading_status(readings.get(row.pk)))
        for row in rows))
    return format_html('<table class="case-panel case-readings"><thead><tr><th>reader</th>'
                       "<th>arm</th><th>worklist position</th><th>reading</th></tr></thead>"
                       "<tbody>{}</tbody></table>", body)


def review_panel(case: Case) -> str:
    """The senior's review: not started (and whether both readings are in), open, or signed."""
    review = Review.objects.filter(case=case).select_related("senior__user").first()
    if review is None:
        submitted = Reading.objects.filter(assignment__case=case,
                                           status=Reading.Status.SUBMITTED).count()
        if submitted >= 2:
            text = "Ready for a senior's review (both readings submitted); not opened yet."
        else:
            text = f"Waits for both readings ({submitted} of 2 submitted)."
        return format_html('<span class="review-status" data-status="{}">{}</span>',
                           "not_started", text)
    senior = review.senior.user.get_username()
    when = (f"signed by {senior} on {_when(review.signed_at)}"
            if review.status == Review.Status.SIGNED
            else f"opened by {senior} on {_when(review.opened_at)}")
    link = reverse("admin:reader_review_change", args=[review.pk])
    return format_html('<a class="review-status" data-status="{}" href="{}">{}</a>: {}.',
                       review.status, link, review.get_status_display(), when)
