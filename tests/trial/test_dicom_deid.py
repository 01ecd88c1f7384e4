"""De-identification: nothing identifying survives in the stored bytes; UIDs map consistently."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, generate_uid

from tests.support.dicom_files import identified_cxr, ramp, write_dicom
from tests.support.factories import SiteFactory, TrialFactory
from trial.dicom.deid import patient_age, remap_uid
from trial.dicom.importer import import_path
from trial.models import Case, Image

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(), code="H1")


def stored(image: Image) -> bytes:
    return Path(image.file.path).read_bytes()


@pytest.mark.parametrize("syntax", [None, JPEG2000Lossless], ids=["native", "j2k"])
def test_no_identifying_value_survives_in_the_stored_bytes(tmp_path, site, syntax) -> None:
    extra = {"transfer_syntax": syntax} if syntax else {}
    path, secrets = identified_cxr(tmp_path / "a.dcm", age=45, **extra)
    source = pydicom.dcmread(path)
    birth_date, study_date = source.PatientBirthDate, source.StudyDate
    import_path(path, trial=site.trial, site=site)
    data, original = stored(Image.objects.get()), path.read_bytes()
    for name, value in {**secrets, "birth_date": birth_date, "study_date": study_date}.items():
        assert value.encode() in original, f"{name} was never in the source file"
        assert value.encode() not in data, f"{name} ({value}) survived de-identification"
    assert secrets["patient_name"].split("^")[0].encode() not in data


def test_stored_file_keeps_display_attributes_and_marks_deidentification(tmp_path, site) -> None:
    path, _ = identified_cxr(tmp_path / "a.dcm", age=45, sex="F")
    import_path(path, trial=site.trial, site=site)
    image = Image.objects.get()
    ds = pydicom.dcmread(image.file.path)
    assert ds.PatientName == ds.PatientID == image.case.case_id
    assert (ds.PatientAge, ds.PatientSex) == ("045Y", "F")
    assert (ds.Manufacturer, ds.ManufacturerModelName) == (
        "SYNTHETIC", "cxr-trials synthetic generator")
    assert ds.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert "113100" in codes
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.WindowWidth
    assert not any(elem.tag.is_private for elem in ds)
    assert "ImageComments" not in ds and "InstitutionName" not in ds
    assert ds.AccessionNumber == "" and ds.PatientBirthDate == ""


def test_uids_are_remapped_consistently_across_imports(tmp_path, site) -> None:
    study = generate_uid()
    first, s1 = identified_cxr(tmp_path / "a.dcm", seed=1, study_uid=study)
    second, s2 = identified_cxr(tmp_path / "b.dcm", seed=2, study_uid=study)
    import_path(first, trial=site.trial, site=site)
    import_path(second, trial=site.trial, site=site)
    case = Case.objects.get()
    a, b = (pydicom.dcmread(i.file.path) for i in case.images.order_by("pk"))
    salt = site.trial.deid_salt
    assert a.StudyInstanceUID == b.StudyInstanceUID == case.study_uid == remap_uid(salt, study)
    assert a.StudyInstanceUID.startswith("2.25.") and len(a.StudyInstanceUID) <= 64
    assert a.SOPInstanceUID == remap_uid(salt, s1["sop_uid"]) != b.SOPInstanceUID
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert Image.objects.get(sop_uid=a.SOPInstanceUID).series_uid == a.SeriesInstanceUID


def test_the_same_study_gets_different_uids_in_different_trials() -> None:
    assert remap_uid("salt-a", "1.2.3") != remap_uid("salt-b", "1.2.3")


def test_age_comes_from_birth_date_when_patient_age_is_missing(tmp_path, site) -> None:
    path = write_dicom(tmp_path / "a.dcm", ramp(8, 8), PatientBirthDate="19500610",
                       StudyDate="20250609", PatientSex="M")
    assert patient_age(pydicom.dcmread(path)) == 74
    import_path(path, trial=site.trial, site=site)
    case = Case.objects.get()
    assert (case.age, case.sex) == (74, "M")
    assert pydicom.dcmread(case.images.get().file.path).PatientAge == "074Y"


def test_ages_over_90_are_capped(tmp_path, site) -> None:
    path = write_dicom(tmp_path / "a.dcm", ramp(8, 8), PatientAge="097Y")
    import_path(path, trial=site.trial, site=site)
    case = Case.objects.get()
    assert case.age == 90
    assert pydicom.dcmread(case.images.get().file.path).PatientAge == "090Y"
