"""The trial app's background tasks: DICOM imports and remaking an image's viewer files (Celery;
in-process when no REDIS_URL is set).

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
from .dicom.validate import DicomRejected
from .dicom.viewer_pixels import prepare
from .models import Image, ImportJob

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
        discard_upload(job.source)  # left behind if a worker died between the two
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


@shared_task(acks_late=True)
def prepare_viewer(image_pk: int) -> dict:
    """Make the viewer's files of an image that has none, decoding it within the import limits.

    For images imported before the files were made at import, or whose files were deleted;
    queued by a web request that had to refuse the image (it never decodes itself)."""
    image = Image.objects.filter(pk=image_pk).first()
    if image is None:
        return {"image": image_pk, "status": "missing"}
    try:
        prepare(image)
    except DicomRejected as exc:  # over the limits: the image stays unviewable
        logger.warning("Viewer files of image %s refused: %s", image_pk, exc.reason)
        return {"image": image_pk, "status": "refused", "reason": exc.reason}
    return {"image": image_pk, "status": "prepared"}


def queue_prepare_viewer(image: Image) -> bool:
    """Queue ``prepare_viewer`` on a worker; False, queueing nothing, when tasks would run in
    this process (no broker): a web request must not decode."""
    if prepare_viewer.app.conf.task_always_eager:
        return False
    try:
        prepare_viewer.delay(image.pk)
    except Exception:  # broker down: the request still refuses, cleanly
        logger.exception("Could not queue the viewer files of image %s", image.pk)
        return False
    return True


def queue_import(job: ImportJob) -> None:
    """Run ``job`` once the caller's transaction commits (in-process without a broker)."""
    transaction.on_commit(lambda: run_import.delay(job.pk))


def discard_upload(source: str) -> None:
    """Delete an upload folder under MEDIA_ROOT/incoming/ (never a path given to the command)."""
    incoming = (Path(settings.MEDIA_ROOT) / "incoming").resolve()
    folder = Path(source).resolve()
    if folder != incoming and folder.is_relative_to(incoming):
        shutil.rmtree(folder, ignore_errors=True)
