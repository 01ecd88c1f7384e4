"""The admin upload: coordinators only, uploads queued after commit, progress and report pages."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.dicom_files import identified_cxr
from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from trial.models import Image, ImportJob, Role

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.dicom_urls")]


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(), code="H1")


def staff(site, role: str | None):
    user = UserFactory(is_staff=True)
    if role:
        MembershipFactory(trial=site.trial, user=user, role=role, site=site)
    return user


@pytest.fixture
def coordinator(client, site):
    client.force_login(staff(site, Role.COORDINATOR))
    return client


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), "application/dicom")


def zipped(*paths: Path) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for p in paths:
            archive.write(p, f"batch/{p.name}")
    return SimpleUploadedFile("batch.zip", buffer.getvalue(), "application/zip")


def test_the_coordinator_sees_the_upload_form(coordinator, site) -> None:
    response = coordinator.get(reverse("trial_import", args=[site.trial.pk]))
    assert response.status_code == 200
    assert b'type="file"' in response.content and b"multiple" in response.content


@pytest.mark.parametrize("role", [None, Role.READER, Role.STATISTICIAN])
def test_other_staff_get_403_on_every_page(client, site, role) -> None:
    job = ImportJob.objects.create(trial=site.trial, site=site, source="x")
    client.force_login(staff(site, role))
    for url in (reverse("trial_import", args=[site.trial.pk]),
                reverse("trial_import_job", args=[job.pk]),
                reverse("trial_import_job_progress", args=[job.pk])):
        assert client.get(url).status_code == 403, url


def test_anonymous_users_are_sent_to_the_admin_login(client, site) -> None:
    response = client.get(reverse("trial_import", args=[site.trial.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_upload_queues_an_import_after_commit_and_shows_the_report(
        coordinator, site, tmp_path, settings, django_capture_on_commit_callbacks) -> None:
    single, _ = identified_cxr(tmp_path / "one.dcm", seed=1)
    in_zip, _ = identified_cxr(tmp_path / "two.dcm", seed=2)
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = coordinator.post(
            reverse("trial_import", args=[site.trial.pk]),
            {"site": site.pk, "files": [upload(single), zipped(in_zip), upload(bad)]},
        )
    assert len(callbacks) == 1
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("trial_import_job", args=[job.pk])
    assert (job.status, job.imported, job.rejected) == ("done", 2, 1)
    assert Image.objects.count() == 2
    assert not any((settings.MEDIA_ROOT / "incoming").iterdir())  # raw uploads deleted
    page = coordinator.get(response["Location"])
    assert b"<progress" in page.content and b"not a DICOM file" in page.content
    progress = coordinator.get(reverse("trial_import_job_progress", args=[job.pk])).json()
    assert progress["error"] == "" and progress["finished"] is True
    assert (progress["processed"], progress["total"], progress["percent"]) == (3, 3, 100)


def test_a_running_job_page_polls_the_progress_endpoint(coordinator, site) -> None:
    job = ImportJob.objects.create(trial=site.trial, site=site, source="x", status="running",
                                   total=4, processed=1)
    page = coordinator.get(reverse("trial_import_job", args=[job.pk])).content.decode()
    assert reverse("trial_import_job_progress", args=[job.pk]) in page
    assert 'value="1"' in page and "js/import_job.js" in page  # the polling script


def test_an_upload_over_the_size_limit_is_refused(coordinator, site, settings) -> None:
    settings.DICOM_MAX_FILE_MB = 1
    big = SimpleUploadedFile("big.dcm", b"\0" * (2 * 1024 * 1024))
    response = coordinator.post(reverse("trial_import", args=[site.trial.pk]),
                                {"site": site.pk, "files": [big]})
    assert response.status_code == 200
    assert b"Over the 1 MB limit per file: big.dcm" in response.content
    assert not ImportJob.objects.exists()
    assert not (settings.MEDIA_ROOT / "incoming").exists()


def test_a_site_of_another_trial_is_refused(coordinator, site, tmp_path) -> None:
    foreign = SiteFactory()
    path, _ = identified_cxr(tmp_path / "a.dcm")
    response = coordinator.post(reverse("trial_import", args=[site.trial.pk]),
                                {"site": foreign.pk, "files": [upload(path)]})
    assert response.status_code == 200 and not ImportJob.objects.exists()


def test_the_trial_admin_mounts_the_import_pages(coordinator, site, settings) -> None:
    settings.ROOT_URLCONF = "config.urls"
    job = ImportJob.objects.create(trial=site.trial, site=site, source="x", status="done")
    form = coordinator.get(reverse("admin:trial_import", args=[site.trial.pk]))
    assert form.status_code == 200
    page = coordinator.get(reverse("admin:trial_import_job", args=[job.pk])).content.decode()
    progress_url = reverse("admin:trial_import_job_progress", args=[job.pk])
    assert f'data-url="{progress_url}" data-finished="1"' in page
    assert reverse("admin:trial_import", args=[site.trial.pk]) in page
