"""Final reports not delivered to a site's PACS: listed on the dashboard, and "Retry failed
deliveries", through pacs's own service (``pacs.tasks.retry_failed``: audited as
``report_delivery.retried`` with the coordinator as actor, then sent; without a broker the
send runs while the request waits, as drafts do)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from pacs import tasks
from pacs.models import ReportDelivery
from trial.models import Trial

SHOWN = 50  # rows of the dashboard's list (the count is of all)


def failed_deliveries(trial: Trial) -> QuerySet[ReportDelivery]:
    return ReportDelivery.objects.filter(review__case__trial=trial,
                                         status=ReportDelivery.Status.FAILED)


def failed_rows(trial: Trial) -> tuple[int, list[tuple[str, list[Any]]]]:
    """How many failed, and the dashboard's rows (at most ``SHOWN``): case (pseudonymous id),
    PACS, reason, attempts. One query (failed deliveries are few)."""
    rows = list(failed_deliveries(trial).order_by("review__case__case_id", "node__name")
                .values_list("pk", "review__case__case_id", "node__name", "error", "attempts"))
    return len(rows), [(f"p-{pk}", [case, node, error[:300], attempts])
                       for pk, case, node, error, attempts in rows[:SHOWN]]


def retry_failed_deliveries(trial: Trial, *, by: Any) -> tuple[int, int]:
    """Re-queue and send every failed delivery of ``trial``; (retried, left alone: retried
    by someone else meanwhile). Allowed in a locked trial too: sending a signed report to the
    hospital changes none of the trial's data."""
    rows = list(failed_deliveries(trial).order_by("pk"))
    retried = sum(tasks.retry_failed(row, by=by) for row in rows)
    return retried, len(rows) - retried
