"""Gold-standard labels and probabilities from CSV: whole file or nothing, every problem with
its line."""

from __future__ import annotations

import hashlib

import pytest

from metrics.imports import import_labels, import_probabilities, label_set_from_ticks
from metrics.models import CaseLabels, LabelSet, Probabilities
from rating.report_import import ReportImportError
from tests.support.factories import CaseFactory, SiteFactory, TrialFactory
from trial.findings import FINDINGS
from trial.models import AuditEvent

HEADER = "case_id," + ",".join(FINDINGS)


def row(case_id: str, *positive: str) -> str:
    return case_id + "," + ",".join("1" if f in positive else "0" for f in FINDINGS)


@pytest.fixture
def trial(db):
    trial = TrialFactory()
    site = SiteFactory(trial=trial)
    for n in (1, 2, 3):
        CaseFactory(trial=trial, site=site, case_id=f"C{n}")
    return trial


def problems(exc: pytest.ExceptionInfo) -> list[str]:
    return exc.value.problems


def test_labels_are_imported_with_name_provenance_and_hash(trial) -> None:
    data = "\n".join([HEADER, row("C1", "Cardiomegaly"), row("C2", "No Finding")]) + "\n"
    label_set = import_labels(trial, data.encode(), name="Gold (two radiologists)", gold=True,
                              description="Consensus of two readers")
    assert (label_set.provenance, label_set.gold) == (LabelSet.Provenance.IMPORTED, True)
    labels = {r.case.case_id: r.labels for r in CaseLabels.objects.filter(label_set=label_set)}
    assert labels["C1"]["Cardiomegaly"] == 1 and sum(labels["C1"].values()) == 1
    assert set(labels["C2"]) == set(FINDINGS)
    assert label_set.file_sha256 == hashlib.sha256(data.encode()).hexdigest()
    assert AuditEvent.objects.filter(action="label_set.imported").count() == 1


def test_snake_case_headers_in_any_order(trial) -> None:
    names = [f.lower().replace(" ", "_") for f in reversed(FINDINGS)]
    data = "case_id," + ",".join(names) + "\nC1," + ",".join(["0"] * 13 + ["1"]) + "\n"
    label_set = import_labels(trial, data, name="snake")
    assert CaseLabels.objects.get(label_set=label_set).labels["No Finding"] == 1


def test_every_problem_is_listed_with_its_line_and_nothing_is_imported(trial) -> None:
    data = "\n".join([
        HEADER,
        row("C1"),
        row("C9"),                      # unknown case
        row("C1"),                      # repeated
        row("C2").replace(",0", ",2", 1),  # a 2
        "C3,0,1",                       # short row
    ]) + "\n"
    with pytest.raises(ReportImportError) as exc:
        import_labels(trial, data, name="bad")
    found = problems(exc)
    assert any(p.startswith("line 3: no case 'C9'") for p in found)
    assert any(p.startswith("line 4: case C1 is earlier") for p in found)
    assert any(p.startswith("line 5:") and "not 0 or 1" in p for p in found)
    assert any(p.startswith("line 6: fewer fields") for p in found)
    assert not LabelSet.objects.exists() and not CaseLabels.objects.exists()


@pytest.mark.parametrize(("data", "reason"), [
    ("case_id,Cardiomegaly\nC1,1\n", "missing finding column(s) No Finding"),
    (HEADER + ",Pneumonitis\n", "column 'Pneumonitis' is not one of the 14 findings"),
    (HEADER.replace("case_id", "case") + "\n", "missing column(s) case id"),
    (HEADER + "\n", "the file has no rows"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary content"),
    ("case_id," + ",".join(FINDINGS) + ",cardiomegaly\n", "repeats a finding"),
])
def test_bad_files_are_refused_with_a_reason(trial, data, reason) -> None:
    with pytest.raises(ReportImportError) as exc:
        import_labels(trial, data, name="x")
    assert any(reason in p for p in problems(exc)), problems(exc)


def test_a_second_gold_set_or_a_repeated_name_is_refused(trial) -> None:
    data = HEADER + "\n" + row("C1") + "\n"
    import_labels(trial, data, name="Gold", gold=True)
    with pytest.raises(ReportImportError, match="already has a gold"):
        import_labels(trial, data, name="Gold 2", gold=True)
    with pytest.raises(ReportImportError, match="already a label set named"):
        import_labels(trial, data, name="Gold")


def test_probabilities_import_and_replace(trial) -> None:
    data = ("case_id,source,Cardiomegaly,Pleural Effusion\n"
            "C1,model-a,0.9,0.1\nC2,model-a,0.2,\n")
    assert import_probabilities(trial, data) == 2
    values = {p.case.case_id: p.values for p in Probabilities.objects.all()}
    assert values == {"C1": {"Cardiomegaly": 0.9, "Pleural Effusion": 0.1},
                      "C2": {"Cardiomegaly": 0.2}}
    import_probabilities(trial, "case_id,source,Cardiomegaly\nC1,model-a,0.5\n")
    assert Probabilities.objects.get(case__case_id="C1").values == {"Cardiomegaly": 0.5}


@pytest.mark.parametrize("cell", ["1.5", "-0.1", "nan", "high"])
def test_a_probability_outside_0_1_is_refused(trial, cell) -> None:
    with pytest.raises(ReportImportError) as exc:
        import_probabilities(trial, f"case_id,source,Edema\nC1,m,{cell}\n")
    assert problems(exc) == [f"line 2: Edema is {cell!r}, not a probability in [0, 1]"]
    assert not Probabilities.objects.exists()


def test_ticks_label_set_needs_submitted_readings(trial) -> None:
    with pytest.raises(ReportImportError, match="no submitted readings"):
        label_set_from_ticks(trial, name="ticks")


def test_no_gold_standard_after_the_lock_but_other_label_sets(trial) -> None:
    from trial.models import Trial

    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.LOCKED)
    trial.refresh_from_db()
    data = HEADER + "\n" + row("C1", "Edema") + "\n"
    with pytest.raises(ReportImportError, match="locked: its gold standard cannot be set"):
        import_labels(trial, data, name="Late gold", gold=True)
    assert import_labels(trial, data, name="Late labels").gold is False
