"""Queueing drafts as rows: what should be made, what failed and may be retried, what was lost.

A draft row is created (queued) before its task is sent, so a broker that is down loses
nothing: the periodic sweep and ``manage.py generate_drafts`` send it again. A running draft
whose lease ran out (its worker died) is put back in the queue by the periodic takeover check.
This module only writes rows and returns them; handing them to Celery is ``drafting.tasks``'
job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trial import audit
from trial.models import Case, Trial

from .models import Draft, ModelEndpoint
from .queries import active_endpoint, pending_drafts

logger = logging.getLogger(__name__)

STALE = timedelta(minutes=15)  # a queued draft not picked up for this long is sent again


def ensure_draft(case: Case, endpoint: ModelEndpoint) -> Draft:
    """The draft row of ``case`` for ``endpoint``'s configuration, created queued if missing."""
    draft, _ = Draft.objects.get_or_create(
        case=case, fingerprint=endpoint.fingerprint,
        defaults={"endpoint": endpoint, "config": endpoint.config(), "backend": endpoint.backend,
                  "queued_at": timezone.now()},
    )
    return draft


def enrolled_draft(case: Case) -> Draft | None:
    """The draft an enrolled ``case`` gets from its trial's active endpoint (None if none)."""
    endpoint = active_endpoint(case.trial)
    if endpoint is None or case.status != Case.Status.ENROLLED:
        return None
    return ensure_draft(case, endpoint)


def add_missing(trial: Trial, *, by=None, record: bool = True) -> list[Draft] | None:
    """A draft row for every enrolled case of ``trial`` that has none from its active endpoint.

    Returns the new rows (queued, to be sent), or None when the trial has no active endpoint.
    With ``record``, one audit event records the request (the drafts audit how they end).
    """
    endpoint, cases = pending_drafts(trial)
    if endpoint is None:
        return None
    drafts = []
    with transaction.atomic():
        for case in cases.order_by("pk"):
            drafts.append(ensure_draft(case, endpoint))
        if drafts and record:
            audit.record(action="draft.queued_missing", obj=endpoint, actor=by, trial=trial,
                         after={"fingerprint": endpoint.fingerprint, "count": len(drafts),
                                "cases": [d.case.case_id for d in drafts]})
    return drafts


def requeue_failed(draft: Draft, *, by=None) -> Draft | None:
    """Put a failed draft back in the queue (attempts start again), audited, without sending it.

    Returns the re-queued draft, or None if it is not failed (any more: someone else may have
    retried it meanwhile) or is a draft of an earlier configuration: its task would run the
    case's current draft instead, and the old one would stay queued for ever.
    """
    endpoint = active_endpoint(draft.case.trial)
    if endpoint is None or draft.fingerprint != endpoint.fingerprint:
        return None
    with transaction.atomic():
        locked = Draft.objects.select_for_update().get(pk=draft.pk)
        if locked.status != Draft.Status.FAILED:
            return None
        before = {"status": locked.status, "error": locked.error, "attempts": locked.attempts}
        locked.status, locked.attempts, locked.error = Draft.Status.QUEUED, 0, ""
        locked.queued_at, locked.sent_at = timezone.now(), None
        locked.save(update_fields=["status", "attempts", "error", "queued_at", "sent_at"])
        audit.record(action="draft.retried", obj=locked, actor=by, trial=draft.case.trial,
                     before=before, after={"status": locked.status})
    return locked


def take_over_expired(*, now: datetime | None = None) -> list[Draft]:
    """Running drafts whose lease ran out, put back in the queue unsent (returned, to be sent).

    The run holding such a draft stopped (its worker died, or hung past the model timeout and
    ``DRAFT_LEASE_MARGIN_S``), and Redis would deliver its task again only after
    ``CELERY_VISIBILITY_TIMEOUT`` (an hour). Clearing the claim makes sure that run can no
    longer store. A draft that has had its endpoint's max attempts fails instead (one that
    kills its worker every time must not loop). Only drafts of the configuration in force: a
    task always makes the current one.
    """
    now = now or timezone.now()
    expired = list(Draft.objects.filter(status=Draft.Status.RUNNING, lease_until__lt=now)
                   .select_related("case__trial").order_by("lease_until"))
    if not expired:
        return []
    endpoints = {endpoint.trial_id: endpoint for endpoint in ModelEndpoint.objects.filter(
        active=True, trial_id__in={draft.case.trial_id for draft in expired})}
    taken: list[Draft] = []
    for draft in expired:
        endpoint = endpoints.get(draft.case.trial_id)
        if endpoint is None or draft.fingerprint != endpoint.fingerprint:
            continue
        lost = f"its run stopped answering (lease ran out at {draft.lease_until:%H:%M:%S} UTC)"
        if draft.attempts >= endpoint.max_attempts:
            fields = {"status": Draft.Status.FAILED, "finished_at": now,
                      "error": f"Gave up after {draft.attempts} attempts; last: {lost}."}
        else:
            fields = {"status": Draft.Status.QUEUED, "sent_at": None,
                      "error": f"Taken over: {lost}."}
        fields.update(claim="", lease_until=None)
        with transaction.atomic():
            # Only if that run did not store or renew its lease meanwhile.
            if not Draft.objects.filter(pk=draft.pk, status=Draft.Status.RUNNING,
                                        claim=draft.claim, lease_until__lt=now).update(**fields):
                continue
            for name, value in fields.items():
                setattr(draft, name, value)
            if draft.status == Draft.Status.FAILED:
                audit.record(action="draft.failed", obj=draft, trial=draft.case.trial,
                             after={"fingerprint": draft.fingerprint, "backend": draft.backend,
                                    "attempts": draft.attempts, "error": draft.error,
                                    "warning": draft.warning})
        logger.warning("Draft of case %s: %s", draft.case.case_id, draft.error)
        if draft.status == Draft.Status.QUEUED:
            taken.append(draft)
    return taken


def lost_drafts(*, now: datetime | None = None) -> list[Draft]:
    """What may have been lost and must be sent again (the periodic sweep sends these).

    Running drafts whose lease ran out (``take_over_expired``), enrolled cases with no draft
    from their trial's endpoint (rows made now), and queued drafts never sent or not picked up
    for ``STALE``. Only drafts of the configuration in force: a task always makes the current
    one.
    """
    now = now or timezone.now()
    found = take_over_expired(now=now)
    lost = Q(status=Draft.Status.QUEUED) & (Q(sent_at__isnull=True) | Q(sent_at__lt=now - STALE))
    for endpoint in ModelEndpoint.objects.filter(active=True).select_related("trial"):
        found += add_missing(endpoint.trial, record=False) or []
        found += Draft.objects.filter(lost, case__trial=endpoint.trial,
                                      fingerprint=endpoint.fingerprint).exclude(
            pk__in=[draft.pk for draft in found])
    return found
