"""The trial app's background task: DICOM imports (Celery; in-process when no REDIS_URL is set).

Tasks take primary keys, are queued with ``transaction.on_commit`` and are safe to run twice
(``acks_late``: a worker that dies mid-task gets the task again).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .dicom.importer import import_path
from .models import ImportJob

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_import(job_pk: int) -> dict:
    """Run the DICOM import ``job_pk``; the job records the outcome (done or failed).

    A finished job is left alone; a job found running (its worker died) is re-run, and the
    files it had already imported come back as duplicates. Uploaded raw files are deleted
    once the job has finished: only de-identified bytes may stay on the server.
    """
    job = ImportJob.objects.select_related("trial", "site", "created_by").filter(
        pk=job_pk
    ).first()
    if job is None:
        logger.warning("Import job %s does not exist", job_pk)
        return {"job": job_pk, "status": "missing"}
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return {"job": job.pk, "status": job.status}
    try:
        import_path(job.source, trial=job.trial, site=job.site, by=job.created_by, job=job)
    except Exception as exc:  # recorded on the job for the coordinator, not re-raised
        logger.exception("Import job %s failed", job.pk)
        if job.status != ImportJob.Status.FAILED:
            job.status = ImportJob.Status.FAILED
            job.error = str(exc)
            job.finished_at = timezone.now()
            job.save()
    finally:
        discard_upload(job.source)
    return {"job": job.pk, "status": job.status, "imported": job.imported,
            "duplicates": job.duplicates, "rejected": job.rejected}


def queue_import(job: ImportJob) -> None:
    """Run ``job`` once the caller's transaction commits (in-process without a broker)."""
    transaction.on_commit(lambda: run_import.delay(job.pk))


def discard_upload(source: str) -> None:
    """Delete an upload folder under MEDIA_ROOT/incoming/ (never a path given to the command)."""
    incoming = (Path(settings.MEDIA_ROOT) / "incoming").resolve()
    folder = Path(source).resolve()
    if folder != incoming and folder.is_relative_to(incoming):
        shutil.rmtree(folder, ignore_errors=True)
