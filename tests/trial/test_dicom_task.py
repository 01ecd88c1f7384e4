"""The run_import task: records the outcome on the job, is safe twice, deletes raw uploads."""

from __future__ import annotations

import shutil

import pytest

from tests.support.dicom_files import identified_cxr
from tests.support.factories import SiteFactory, TrialFactory
from trial.models import Image, ImportJob
from trial.tasks import run_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(), code="H1")


def upload_folder(settings, tmp_path):
    folder = settings.MEDIA_ROOT / "incoming" / "abc"
    folder.mkdir(parents=True)
    shutil.copy(identified_cxr(tmp_path / "a.dcm")[0], folder / "a.dcm")
    return folder


def test_run_import_imports_marks_done_and_deletes_the_upload(site, settings, tmp_path) -> None:
    folder = upload_folder(settings, tmp_path)
    job = ImportJob.objects.create(trial=site.trial, site=site, source=str(folder))
    result = run_import.delay(job.pk).get()
    job.refresh_from_db()
    assert (result["status"], job.status, job.imported, job.finished_at is not None) == (
        "done", "done", 1, True)
    assert not folder.exists()


def test_running_a_finished_job_again_changes_nothing(site, settings, tmp_path) -> None:
    job = ImportJob.objects.create(trial=site.trial, site=site,
                                   source=str(upload_folder(settings, tmp_path)))
    run_import(job.pk)
    run_import(job.pk)
    job.refresh_from_db()
    assert (job.imported, job.duplicates, Image.objects.count()) == (1, 0, 1)


def test_a_job_left_running_by_a_dead_worker_is_rerun_safely(site, tmp_path) -> None:
    path, _ = identified_cxr(tmp_path / "a.dcm")
    job = ImportJob.objects.create(trial=site.trial, site=site, source=str(path))
    run_import(job.pk)
    ImportJob.objects.filter(pk=job.pk).update(status="running")
    run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported, job.duplicates, Image.objects.count()) == (
        "done", 0, 1, 1)
    assert path.exists()  # a path given to the command is never deleted


def test_a_missing_source_marks_the_job_failed(site, tmp_path) -> None:
    job = ImportJob.objects.create(trial=site.trial, site=site, source=str(tmp_path / "gone"))
    run_import(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "does not exist" in job.error
