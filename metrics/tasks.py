"""The metrics app's Celery side: the LLM tools' tasks and handing rows to the queue (the only
module here that knows Celery). Without ``REDIS_URL`` a sent task runs in-process at once.

As for drafts: tasks take primary keys and are safe to run twice (``metrics.run`` stores one
result per row); a send never waits for a broker that is down (the row stays queued and the
periodic sweep sends it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import shared_task
from django.utils import timezone

from drafting.tasks import run_with_retries, send_task

from . import jobs, run
from .models import ChatJob, Judgement

logger = logging.getLogger(__name__)


@shared_task(name="metrics.tasks.run_chat_job", bind=True, acks_late=True,
             reject_on_worker_lost=True, max_retries=None, ignore_result=True)
def run_chat_job(self, kind: str, pk: int) -> dict:
    """Label one text (``kind`` "label") or judge one report ("judge"); retries scheduled by
    the run (backoff with jitter, at most the tool's max_attempts)."""
    return run_with_retries(self, lambda: run.run_job(kind, pk))


@shared_task(name="metrics.tasks.sweep_chat_jobs", ignore_result=True)
def sweep_chat_jobs() -> int:
    """Periodic (celery beat): send again what was never sent, lost or taken over."""
    return sum(send(job) for job in jobs.lost())


def send(job: ChatJob) -> bool:
    """Hand the row's task to the queue; False (logged) if the broker cannot take it now."""
    kind = "judge" if isinstance(job, Judgement) else "label"
    if not send_task(run_chat_job, (kind, job.pk), what=f"{kind} job {job.pk}"):
        return False
    type(job).objects.filter(pk=job.pk, status=ChatJob.Status.QUEUED,
                             sent_at__isnull=True).update(sent_at=timezone.now())
    return True


def send_all(rows: Iterable[ChatJob]) -> int:
    """Send each row; how many the broker took."""
    return sum(send(row) for row in rows)
