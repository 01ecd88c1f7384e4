"""``manage.py import_dicom``: progress bar, summary with reasons, clear failures."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.support.dicom_files import identified_cxr, text_file
from tests.support.factories import SiteFactory, TrialFactory
from trial.management.progress import progress_bar
from trial.models import Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(slug="cxr"), code="H1")


def import_dicom(*args: str, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_dicom", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_the_command_imports_and_summarises_with_reasons(tmp_path, site) -> None:
    identified_cxr(tmp_path / "in" / "a.dcm", seed=1)
    identified_cxr(tmp_path / "in" / "b.dcm", seed=2)
    text_file(tmp_path / "in" / "notes.txt")
    out, err = import_dicom(str(tmp_path / "in"), trial="cxr", site="H1")
    assert "2 imported, 0 duplicate, 1 rejected (3 files)" in out
    assert "notes.txt: not a DICOM file" in out
    assert "[" + "#" * 30 + "] 3/3" in err
    assert Case.objects.count() == 2


def test_a_second_run_reports_duplicates(tmp_path, site) -> None:
    path, _ = identified_cxr(tmp_path / "a.dcm")
    import_dicom(str(path), trial="cxr", site="H1")
    out, _ = import_dicom(str(path), trial="cxr", site="H1")
    assert "0 imported, 1 duplicate, 0 rejected" in out


def test_history_option_attaches_history(tmp_path, site) -> None:
    path, _ = identified_cxr(tmp_path / "a.dcm", accession="ACC-9")
    csv = tmp_path / "h.csv"
    csv.write_text("accession_number,chief_complaint,history,lab_results,prior_imaging\n"
                   "ACC-9,Haemoptysis,Smoker,Hb 118,None\n")
    import_dicom(str(path), trial="cxr", site="H1", history=str(csv))
    assert Case.objects.get().chief_complaint == "Haemoptysis"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trial": "nope", "site": "H1"}, "Unknown trial 'nope'"),
        ({"trial": "cxr", "site": "XX"}, "Unknown site 'XX' in trial cxr"),
    ],
)
def test_unknown_trial_or_site_fails_clearly(tmp_path, site, options, message) -> None:
    with pytest.raises(CommandError, match=message):
        import_dicom(str(tmp_path), **options)


def test_a_missing_path_fails_clearly(tmp_path, site) -> None:
    with pytest.raises(CommandError, match="Path does not exist"):
        import_dicom(str(tmp_path / "missing"), trial="cxr", site="H1")


def test_a_bad_history_header_fails_clearly(tmp_path, site) -> None:
    path, _ = identified_cxr(tmp_path / "a.dcm")
    csv = tmp_path / "h.csv"
    csv.write_text("accession_number,complaint\nACC-1,Cough\n")
    with pytest.raises(CommandError, match="missing chief_complaint, history"):
        import_dicom(str(path), trial="cxr", site="H1", history=str(csv))
    assert not Case.objects.exists()


def test_progress_bar_shape() -> None:
    assert progress_bar(12, 40, width=10) == "[###.......] 12/40"
    assert progress_bar(0, 0, width=4) == "[####] 0/0"
