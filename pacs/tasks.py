"""The pacs app's Celery side: the report delivery task, the import of studies the listener
received, and handing both to the queue (the only module here that knows Celery). Without
``REDIS_URL`` a sent task runs in-process at once, as drafts do.

As for drafts: the task takes a primary key and is safe to run twice (``pacs.delivery`` sends
and stores one outcome per row); a send never waits for a broker that is down (the row stays
queued and the periodic sweep sends it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from celery import shared_task
from django.utils import timezone

from drafting.tasks import run_with_retries, send_task
from trial.models import Site

from . import delivery, intake
from .models import ReportDelivery

logger = logging.getLogger(__name__)


@shared_task(name="pacs.tasks.deliver_report", bind=True, acks_late=True,
             reject_on_worker_lost=True, max_retries=None, ignore_result=True)
def deliver_report(self, pk: int) -> dict:
    """Send one final report to one PACS; retries scheduled by the run (backoff with jitter,
    at most ``PACS_DELIVERY_MAX_ATTEMPTS``)."""
    return run_with_retries(self, lambda: delivery.run_delivery(pk))


@shared_task(name="pacs.tasks.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> int:
    """Periodic (celery beat): send again what was never sent, lost or taken over."""
    return send_all(delivery.lost())


@shared_task(name="pacs.tasks.import_received", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def import_received(site_pk: int, name: str) -> dict:
    """Import a study the listener received and handed off (``intake.settle``): the folder
    ``name`` in the site's spool, nothing else (a message names no path)."""
    site = Site.objects.select_related("trial").filter(pk=site_pk).first()
    if site is None or "/" in name or not name.startswith(intake.QUEUED):
        logger.error("Received study %r of site %s: not a queued spool folder", name, site_pk)
        return {"status": "refused"}
    job = intake.import_queued(site, intake.site_folder(site) / name)
    if job is None:
        return {"status": "gone"}
    return {"status": job.status, "job": job.pk, "imported": job.imported,
            "duplicates": job.duplicates, "rejected": job.rejected}


@shared_task(name="pacs.tasks.pull_accessions", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def pull_accessions(run_pk: int, sealed: str) -> dict:
    """A pull queued by the admin's form (``pull.queue_pull``): done here, its run followed
    on the run's page."""
    from .models import PullRun
    from .pull import run_queued

    run = PullRun.objects.select_related("site__trial", "node", "requested_by").filter(
        pk=run_pk).first()
    if run is None:
        return {"status": "missing"}
    run = run_queued(run, sealed)
    return {"status": run.status, "run": run.pk}


def start_pull(run, sealed: str) -> bool:
    """Queue a pull prepared by ``pull.queue_pull``; False if the broker cannot take it."""
    return send_task(pull_accessions, (run.pk, sealed), what=f"pull run {run.pk}")


def hand_off(site: Site, folder) -> bool:
    """Queue the import of a quiet received study on a worker; False if the broker cannot
    take it (the listener then imports it itself)."""
    return send_task(import_received, (site.pk, folder.name), what=f"received study of {site}")


def send(row: ReportDelivery) -> bool:
    """Hand the delivery's task to the queue; False (logged) if the broker cannot take it."""
    if not send_task(deliver_report, (row.pk,), what=f"report delivery {row.pk}"):
        return False
    ReportDelivery.objects.filter(pk=row.pk, status=ReportDelivery.Status.QUEUED,
                                  sent_at__isnull=True).update(sent_at=timezone.now())
    return True


def send_all(rows: Iterable[ReportDelivery]) -> int:
    """Send each row; how many the broker took."""
    return sum(send(row) for row in rows)


def deliver_signed(review: Any) -> list[ReportDelivery]:
    """On sign-off: queue the review's deliveries (``delivery.queue_report``) and send the
    queued ones."""
    rows = delivery.queue_report(review)
    send_all(row for row in rows if row.status == ReportDelivery.Status.QUEUED)
    return rows


def retry_failed(row: ReportDelivery, *, by: Any = None) -> bool:
    """Re-queue a failed delivery (audited, ``delivery.retry_failed``) and send it; False if
    it is not failed. True once re-queued, even if the broker cannot take it now (the sweep
    sends it)."""
    requeued = delivery.retry_failed(row, by=by)
    if requeued is None:
        return False
    send(requeued)
    return True
