"""Importing DICOM files: cases by study, duplicates, compressed data, rejections, history."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from tests.support.dicom_files import (
    identified_cxr,
    media_files,
    png_file,
    ramp,
    text_file,
    truncated_copy,
    write_dicom,
)
from tests.support.factories import SiteFactory, TrialFactory, UserFactory
from trial.dicom.history import HistoryCsvError
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.models import AuditEvent, Case, Image, ImportJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(), code="H1")


def run(path: Path, site, **kwargs) -> ImportJob:
    return import_path(path, trial=site.trial, site=site, **kwargs)


def reasons(job: ImportJob) -> dict[str, str]:
    return {Path(e["file"]).name: e["reason"] for e in job.report if e["status"] == "rejected"}


def test_a_good_file_becomes_a_screened_case_with_one_image(tmp_path, site) -> None:
    path, _ = identified_cxr(tmp_path / "in" / "a.dcm", age=67, sex="M")
    job = run(path, site, by=UserFactory())
    assert (job.status, job.imported, job.duplicates, job.rejected) == ("done", 1, 0, 0)
    case = Case.objects.get(trial=site.trial)
    assert (case.case_id, case.status, case.age, case.sex) == ("H1-0001", "screened", 67, "M")
    image = case.images.get()
    assert image.synthetic and image.import_job == job
    assert (image.modality, image.view_position, image.rows, image.bits_stored) == (
        "DX", "PA", 96, 16)
    assert image.window_center is not None and image.sha256 and image.file_size > 0
    assert Path(image.file.path).read_bytes()[128:132] == b"DICM"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"case.imported", "image.imported"} <= actions


def test_the_same_sop_instance_twice_is_a_duplicate_and_stores_nothing_new(
        tmp_path, site) -> None:
    path, _ = identified_cxr(tmp_path / "a.dcm")
    run(path, site)
    stored = media_files(settings.MEDIA_ROOT)
    job = run(path, site)
    assert (job.imported, job.duplicates) == (0, 1)
    assert job.report[0]["case"] == "H1-0001"
    assert Image.objects.count() == 1 and media_files(settings.MEDIA_ROOT) == stored


def test_two_images_of_one_study_make_one_case(tmp_path, site) -> None:
    study = generate_uid()
    identified_cxr(tmp_path / "pa.dcm", seed=1, study_uid=study)
    identified_cxr(tmp_path / "lat.dcm", seed=2, study_uid=study, view_position="LL")
    identified_cxr(tmp_path / "other.dcm", seed=3)
    job = run(tmp_path, site)
    assert job.imported == 3
    assert sorted(c.images.count() for c in Case.objects.all()) == [1, 2]
    assert sorted(Case.objects.values_list("case_id", flat=True)) == ["H1-0001", "H1-0002"]


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless], ids=["j2k", "rle"])
def test_compressed_pixel_data_is_stored_compressed(tmp_path, site, syntax) -> None:
    path = make_cxr(tmp_path / "c.dcm", seed=4, rows=64, columns=64, transfer_syntax=syntax)
    original = pydicom.dcmread(path)
    run(path, site)
    image = Image.objects.get()
    stored = pydicom.dcmread(image.file.path)
    assert image.transfer_syntax == syntax == stored.file_meta.TransferSyntaxUID
    assert stored.PixelData == original.PixelData


def test_monochrome1_is_imported_with_its_photometric(tmp_path, site) -> None:
    run(make_cxr(tmp_path / "m1.dcm", seed=5, rows=64, columns=64, photometric="MONOCHROME1"),
        site)
    assert Image.objects.get().photometric == "MONOCHROME1"


def test_bad_files_are_rejected_with_reasons_and_leave_nothing(tmp_path, site) -> None:
    good = make_cxr(tmp_path / "src" / "good.dcm", seed=6, rows=64, columns=64)
    folder = tmp_path / "in"
    folder.mkdir()
    text_file(folder / "notes.txt")
    png_file(folder / "photo.png")
    truncated_copy(good, folder / "half.dcm")
    write_dicom(folder / "nopixels.dcm", ramp(8, 8), with_pixels=False)
    write_dicom(folder / "mr.dcm", ramp(8, 8), modality="MR")
    job = run(folder, site)
    assert (job.total, job.imported, job.rejected) == (5, 0, 5)
    got = reasons(job)
    assert got["notes.txt"] == got["photo.png"] == "not a DICOM file"
    assert got["half.dcm"].startswith("truncated file")
    assert got["nopixels.dcm"] == "no pixel data"
    assert got["mr.dcm"] == "modality MR not allowed (allowed: CR, DX)"
    assert not Case.objects.exists() and not Image.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == []


def test_truncated_compressed_file_is_rejected_as_truncated(tmp_path, site) -> None:
    good = make_cxr(tmp_path / "j.dcm", seed=7, rows=64, columns=64,
                    transfer_syntax=JPEG2000Lossless)
    job = run(truncated_copy(good, tmp_path / "half.dcm"), site)
    assert reasons(job)["half.dcm"].startswith("truncated file")


def test_files_over_the_size_limit_are_rejected(tmp_path, site, settings) -> None:
    settings.DICOM_MAX_FILE_MB = 1
    path = tmp_path / "big.dcm"
    path.write_bytes(b"\0" * (3 * 1024 * 1024))
    assert reasons(run(path, site))["big.dcm"] == "file is 3 MB, over the 1 MB limit"


def test_a_failure_while_storing_leaves_no_file_and_no_row(tmp_path, site, monkeypatch) -> None:
    def broken_audit(**kwargs):
        if kwargs["action"] == "image.imported":
            raise RuntimeError("audit log unavailable")

    monkeypatch.setattr("trial.dicom.importer.record", broken_audit)
    job = run(identified_cxr(tmp_path / "a.dcm")[0], site)
    assert reasons(job)["a.dcm"] == "import failed: audit log unavailable"
    assert not Case.objects.exists() and not Image.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == []


def test_a_zip_and_a_nested_folder_are_both_read(tmp_path, site) -> None:
    nested = tmp_path / "in" / "a" / "b"
    identified_cxr(nested / "deep.dcm", seed=8)
    zipped = identified_cxr(tmp_path / "z.dcm", seed=9)[0]
    with zipfile.ZipFile(tmp_path / "in" / "batch.zip", "w") as archive:
        archive.write(zipped, "studies/z.dcm")
        archive.writestr("__MACOSX/._z.dcm", b"junk")
    job = run(tmp_path / "in", site)
    assert job.imported == 2
    assert sorted(e["file"] for e in job.report) == ["a/b/deep.dcm", "batch.zip/studies/z.dcm"]


def test_a_zip_given_directly_is_read(tmp_path, site) -> None:
    with zipfile.ZipFile(tmp_path / "batch.zip", "w") as archive:
        archive.write(identified_cxr(tmp_path / "x.dcm")[0], "x.dcm")
        archive.writestr("readme.txt", "hello")
    job = run(tmp_path / "batch.zip", site)
    assert (job.imported, job.rejected) == (1, 1)


def test_history_csv_is_attached_by_accession_or_patient_id(tmp_path, site) -> None:
    identified_cxr(tmp_path / "in" / "a.dcm", seed=1, accession="ACC-1", patient_id="P-1")
    identified_cxr(tmp_path / "in" / "b.dcm", seed=2, accession="ACC-2", patient_id="P-2")
    csv = tmp_path / "history.csv"
    csv.write_text(
        "accession_number,patient_id,chief_complaint,history,lab_results,prior_imaging\n"
        "ACC-1,,Cough,Smoker,CRP 80,None\n"
        ",P-2,Fever,Asthma,WBC 12,CXR 2024\n"
    )
    run(tmp_path / "in", site, history_csv=csv)
    complaints = {c.chief_complaint for c in Case.objects.all()}
    assert complaints == {"Cough", "Fever"}
    assert all(c.has_history for c in Case.objects.all())


def test_a_bad_history_header_fails_clearly_before_importing(tmp_path, site) -> None:
    identified_cxr(tmp_path / "in" / "a.dcm")
    csv = tmp_path / "history.csv"
    csv.write_text("mrn,complaint\nP-1,Cough\n")
    with pytest.raises(HistoryCsvError, match="accession_number or patient_id"):
        run(tmp_path / "in", site, history_csv=csv)
    assert ImportJob.objects.get().status == "failed"
    assert not Case.objects.exists()


def test_case_numbers_continue_per_site(tmp_path, site) -> None:
    other = SiteFactory(trial=site.trial, code="H2")
    run(identified_cxr(tmp_path / "a.dcm", seed=1)[0], site)
    run(identified_cxr(tmp_path / "b.dcm", seed=2)[0], other)
    run(identified_cxr(tmp_path / "c.dcm", seed=3)[0], site)
    assert sorted(Case.objects.values_list("case_id", flat=True)) == [
        "H1-0001", "H1-0002", "H2-0001"]


def test_progress_is_reported_for_every_file(tmp_path, site) -> None:
    for seed in range(3):
        identified_cxr(tmp_path / "in" / f"{seed}.dcm", seed=seed)
    calls: list[tuple[int, int]] = []
    run(tmp_path / "in", site, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]



def test_a_trial_locked_during_an_import_takes_no_further_file(tmp_path, site) -> None:
    """Each file checks the lock under the trial's row lock, not only the start of the job."""
    from trial.dicom.importer import import_file
    from trial.dicom.sources import SourceFile
    from trial.models import Trial

    path, _ = identified_cxr(tmp_path / "in" / "late.dcm")
    Trial.objects.filter(pk=site.trial_id).update(status=Trial.Status.LOCKED)
    entry = import_file(SourceFile(name="late.dcm", path=path), trial=site.trial, site=site)
    assert (entry["status"], entry["reason"]) == ("rejected", "the trial is locked: it takes "
                                                              "no new image")
    assert not Image.objects.exists() and not Case.objects.exists()
