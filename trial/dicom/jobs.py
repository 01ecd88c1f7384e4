"""Starting a DICOM import from uploaded files: the admin's upload page and the API share this.

The uploads are written under MEDIA_ROOT/incoming/<uuid>/ and an ``ImportJob`` is queued when
the transaction commits; the job imports (and de-identifies) them and then deletes the folder,
so only de-identified bytes stay on the server. A failure before the job exists removes the
folder at once.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.text import get_valid_filename

from ..lifecycle import check_writable
from ..models import ImportJob, Site, Trial
from ..tasks import queue_import


def save_uploads(files: list) -> Path:
    """Write the uploads under MEDIA_ROOT/incoming/<uuid>/; the import job deletes them.

    If writing fails (a full disk, a dropped upload) the folder is removed at once."""
    folder = Path(settings.MEDIA_ROOT) / "incoming" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        for n, upload in enumerate(files, start=1):
            name = get_valid_filename(Path(upload.name).name) or "upload"
            with (folder / f"{n:05d}_{name}").open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def start_import(files: list, *, trial: Trial, site: Site, by: Any) -> ImportJob:
    """Save ``files`` and queue their import into ``trial`` at ``site``; returns the job.

    Without a broker the import has run by the time this returns (refresh the job to see it).
    """
    check_writable(trial, "Images")  # refused before anything is written
    folder = save_uploads(files)
    try:
        with transaction.atomic():
            job = ImportJob.objects.create(trial=trial, site=site, created_by=by,
                                           source=str(folder))
            queue_import(job)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job
