"""The dashboard's one write: "Retry failed drafts", through drafting's own service.

Each draft is re-queued by ``drafting.tasks.retry_failed`` (``queue.requeue_failed``), which
audits it (``draft.retried``, with the coordinator as actor) and sends it to the queue.
Without a broker (``REDIS_URL`` unset) tasks run in-process, so the drafts are made while the
request waits, exactly as with the admin's action of the same name.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from drafting import tasks
from drafting.models import Draft
from drafting.queries import active_endpoint
from trial.lifecycle import check_writable
from trial.models import Case, Trial


def failed_drafts(trial: Trial) -> QuerySet[Draft]:
    """The failed drafts the dashboard counts: of the enrolled cases, by the active endpoint as
    configured now (an older configuration's draft cannot be retried)."""
    endpoint = active_endpoint(trial)
    if endpoint is None:
        return Draft.objects.none()
    return Draft.objects.filter(case__trial=trial, case__status=Case.Status.ENROLLED,
                                fingerprint=endpoint.fingerprint, status=Draft.Status.FAILED)


def retry_failed_drafts(trial: Trial, *, by: Any) -> tuple[int, int]:
    """Re-queue every failed draft of ``trial`` (audited by the drafting service); returns
    (retried, left alone: retried or changed by someone else meanwhile). 409 when locked."""
    check_writable(trial, "The drafts")
    drafts = list(failed_drafts(trial).select_related("case__trial").order_by("pk"))
    retried = sum(tasks.retry_failed(draft, by=by) for draft in drafts)
    return retried, len(drafts) - retried
