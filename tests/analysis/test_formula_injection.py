"""Formula injection in the exports (security issue, medium): text typed by people (a case id
``=1+2``, an exclusion reason ``=HYPERLINK(...)``, an imported source ``@SUM(B1)``, a value
starting with a tab or carriage return) must never reach a spreadsheet as a live formula, in
any export: the XLSX and CSV-zip downloads, and ``manage.py analyze``'s data and results
tables. Numbers stay numbers."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from django.core.management import call_command

from analysis import datasets
from rating import build, ratings
from rating import instruments as inst
from rating.models import Campaign, RaterItem
from rating.report_import import import_reports
from reader.models import Reading
from tests.support.campaign_world import build_campaign_world
from tests.support.factories import CaseFactory, MembershipFactory, UserFactory
from trial import enrolment
from trial.models import Arm, Case, Membership, Role

pytestmark = pytest.mark.django_db

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CASE_ID = "=1+2"
HYPERLINK = '=HYPERLINK("http://x","y")'
HISTORY = "@SUM(A1) cough for three days"  # not an exported column: must not appear at all
SOURCE = "@SUM(B1)"
READER = "@scp.reader"  # Django's username validator allows @, + and -
RATER = "-rater1"
TAB_CASE, CR_REASON = "\t=2+3", "\r-4+5"
MID_CR = "Substandard image\r=1+2"  # a lone CR inside the text: must not end the CSV row
NUMERIC_TEXT = "-15"  # a case id that looks like a number: text, so neutralised
NEGATIVE = -1.5  # a number: stays a number
NUMBER = re.compile(r"-?\d+(\.\d+)?(e[+-]?\d+)?")
FINDINGS_FORMULA = "=cmd|' /C calc'!A0"  # a report text (statistician downloads only)
IMPRESSION_BULLET = "- Right lower lobe pneumonia."  # the everyday case: a bulleted report


def in_xlsx(text: str) -> str:
    """``text`` as read back from the workbook: XML turns a stored CR into LF (in one cell)."""
    return text.replace("\r", "\n")


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [CASE_ID, HYPERLINK, "+1", "-1.5", "@SUM(A1)", "\tx", "\r=1",
                                  "'already quoted"])
def test_text_starting_with_a_trigger_or_the_quote_gets_one_quote(text) -> None:
    assert datasets.neutralise(text) == "'" + text


@pytest.mark.parametrize("value", ["Substandard image", " =1+2", "a=b", "", "1.5", "2a"])
def test_other_text_is_unchanged(value) -> None:
    assert datasets.neutralise(value) == value


@pytest.mark.parametrize("value", [-1.5, -2, 0, 3.25, True, False, None])
def test_non_text_is_unchanged(value) -> None:
    assert datasets.neutralise(value) is value


def test_numbers_stay_numbers_and_numeric_looking_text_is_text(tmp_path) -> None:
    frame = pd.DataFrame({"number": [NEGATIVE, 2.0], "integer": [-2, 3],
                          "mixed": [NEGATIVE, "-1.5"], "text": ["-1.5", CASE_ID]})
    text = datasets.csv_bytes(frame).decode()
    assert text.splitlines() == ["number,integer,mixed,text", "-1.5,-2,-1.5,'-1.5",
                                 "2.0,3,'-1.5,'=1+2"]
    path = tmp_path / "x.xlsx"
    datasets.export_xlsx({"t": frame}, path)
    sheet = openpyxl.load_workbook(path)["t"]
    assert [(c.value, c.data_type) for c in sheet[2]] == [
        (NEGATIVE, "n"), (-2, "n"), (NEGATIVE, "n"), ("'-1.5", "s")]
    assert [(c.value, c.data_type) for c in sheet[3]] == [
        (2, "n"), (3, "n"), ("'-1.5", "s"), ("'=1+2", "s")]
    assert frame.loc[1, "text"] == CASE_ID  # the caller's frame is not modified


def test_a_carriage_return_inside_text_is_quoted_and_ordinary_csv_is_unchanged() -> None:
    """Python 3.11's csv writer leaves a lone CR unquoted with a "\n" terminator: a spreadsheet
    would start a new row at it, with ``=1+2`` as its first cell."""
    frame = pd.DataFrame({"reason": [MID_CR, "two\r\nlines", 'say "x"', None],
                          "n": [1.0, NEGATIVE, None, 2.0]})
    content = datasets.csv_bytes(frame)
    assert content.decode() == ('reason,n\n"Substandard image\r=1+2",1.0\n"two\r\nlines",-1.5\n'
                                '"say ""x""",\n,2.0\n')
    assert unsafe_csv_fields(content) == []
    assert len(list(csv.reader(io.StringIO(content.decode(), newline="")))) == 5
    plain = pd.DataFrame({"case": ["C1", "a,b", 'q"'], "value": [4.0, None, 2.5],
                          "ok": [True, False, None]})
    assert datasets.csv_bytes(plain) == plain.to_csv(index=False, lineterminator="\n").encode()


def test_the_rule_is_in_the_data_dictionary() -> None:
    dictionary = datasets.data_dictionary({"cases": pd.DataFrame(columns=["case"])})
    note = dictionary.iloc[-1]
    assert (note.table, note.column) == ("(every table)", "(every text cell)")
    assert note.description == datasets.NEUTRALISATION_NOTE
    for trigger in ("=, +, -, @, a tab or a carriage return", "'=1+2", "Numbers stay numbers"):
        assert trigger in note.description


# --------------------------------------------------------------------------------------------
# A trial with hostile text, through the real export paths
# --------------------------------------------------------------------------------------------

def rate(campaign: Campaign, seed: int) -> None:
    """Every rater answers every item of ``campaign`` (varied scores)."""
    rng = random.Random(seed)
    for ri in RaterItem.objects.filter(campaign=campaign).select_related("item"):
        values = {}
        for code in ri.item.instruments:
            values[code] = {
                "likert": str(rng.randint(2, 5)), "radpeer": str(rng.randint(2, 5)),
                "acceptability": rng.choice("ABCD"), "preference": rng.choice("AB"),
                "source_id": rng.choice("AB"),
                "errors": {"omitted_finding": {"significant": rng.randint(0, 2),
                                               "insignificant": rng.randint(0, 2)}},
            }[code]
        ratings.open_item(ri)
        ratings.submit(ri, values, by=ri.rater.user)


@pytest.fixture
def hostile(tmp_path):
    """The campaign world, with what a coordinator (or an import) could put in its text."""
    world = build_campaign_world(tmp_path / "dicom", cases=2, raters=2)
    trial = world.trial
    first = world.read.cases[0]
    # The coordinator renames a case (admin/API accept any id) and writes its history.
    Case.objects.filter(pk=first.pk).update(case_id=CASE_ID, history=HISTORY)
    site = first.site
    coordinator = Membership.objects.get(trial=trial, role=Role.COORDINATOR).user
    for case_id, reason in (("X-1", HYPERLINK), ("X-2", MID_CR), (NUMERIC_TEXT, "-1.5")):
        enrolment.exclude(CaseFactory(trial=trial, site=site, case_id=case_id), reason=reason,
                          by=coordinator)
    # The services strip leading whitespace; data that got in some other way must be safe too.
    CaseFactory(trial=trial, site=site, case_id=TAB_CASE, status=Case.Status.EXCLUDED,
                exclusion_reason=CR_REASON)
    reader = world.read.readers[Arm.SCP].user
    reader.username = READER
    reader.save(update_fields=["username"])
    rater = world.raters[0].user
    rater.username = RATER
    rater.save(update_fields=["username"])
    Reading.objects.filter(assignment__reader=world.read.readers[Arm.SCP],
                           assignment__case=first).update(gap_s=NEGATIVE,
                                                          findings=FINDINGS_FORMULA,
                                                          impression=IMPRESSION_BULLET)
    rate(world.campaign, seed=3)
    # A retrospective campaign whose imported CSV names a model source "@SUM(B1)".
    retro = Campaign.objects.create(trial=trial, name="Retro", kind=Campaign.Kind.RETROSPECTIVE,
                                    instruments=list(inst.ALL), seed=5)
    retro.raters.set(world.raters)
    lines = ["case_id,source,findings,impression"]
    for case in world.read.cases:
        case.refresh_from_db()
        lines += [f"{case.case_id},published,Published {case.pk}.,Normal.",
                  f"{case.case_id},{SOURCE},Model {case.pk}.,Normal."]
    import_reports(retro, "\n".join(lines).encode())
    build.build(retro)
    retro.status = Campaign.Status.OPEN
    retro.save(update_fields=["status"])
    rate(retro, seed=4)
    return world


def unsafe_csv_fields(content: bytes) -> list[str]:
    """Fields of a CSV file that a spreadsheet would run as a formula (a number such as -1.5,
    written by the export as a number, is read as a number)."""
    rows = csv.reader(io.StringIO(content.decode(), newline=""))
    return [field for row in rows for field in row
            if field.startswith(TRIGGERS) and not NUMBER.fullmatch(field)]


def unsafe_xlsx_cells(workbook: openpyxl.Workbook) -> list[tuple[str, str, object]]:
    """Cells that are formulas, or text a spreadsheet would run as one when edited/re-saved."""
    return [(sheet.title, cell.coordinate, cell.value)
            for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row
            if cell.data_type == "f"
            or (isinstance(cell.value, str) and cell.value.startswith(TRIGGERS))]


def assert_data_csvs_are_safe(files: dict[str, bytes], *, texts: bool) -> None:
    """``texts``: the statistician's download, with report_texts.csv (not in analyze's)."""
    assert set(files) == {"cases.csv", "readings.csv", "ratings.csv", "long.csv",
                          datasets.DICTIONARY_CSV} | ({"report_texts.csv"} if texts else set())
    for name, content in files.items():
        assert unsafe_csv_fields(content) == [], name
    cases = files["cases.csv"].decode()
    assert ",'=1+2," in cases and '"\'=HYPERLINK(""http://x"",""y"")"' in cases
    assert ",'-15," in cases and ",'-1.5," in cases
    assert ",'\t=2+3," in cases and '"\'\r-4+5"' in cases
    assert HISTORY not in b"".join(files.values()).decode()
    readings = files["readings.csv"].decode()
    assert ",'@scp.reader," in readings and ",-1.5," in readings  # the number, unquoted
    ratings_csv = files["ratings.csv"].decode()
    assert ",'@SUM(B1)," in ratings_csv and ",'-rater1," in ratings_csv
    assert ",'=1+2," in files["long.csv"].decode()
    assert datasets.NEUTRALISATION_NOTE.split(":")[0] in files[datasets.DICTIONARY_CSV].decode()
    # Reversible: dropping the one quote gives the values as stored.
    frame = pd.read_csv(io.BytesIO(files["cases.csv"]), dtype=str, keep_default_na=False)
    assert set(frame["case"].str.replace("^'", "", regex=True)) >= {
        CASE_ID, NUMERIC_TEXT, TAB_CASE, "X-1"}
    assert set(frame["exclusion_reason"].str.replace("^'", "", regex=True)) >= {
        HYPERLINK, "-1.5", CR_REASON, MID_CR}
    assert f',"{MID_CR}",' in cases  # quoted: one field, one row
    if texts:
        report_texts = pd.read_csv(io.BytesIO(files["report_texts.csv"]), dtype=str,
                                   keep_default_na=False)
        (row,) = report_texts[(report_texts["reader"] == "'" + READER)
                              & (report_texts["case"] == "'" + CASE_ID)].itertuples()
        assert (row.findings, row.impression) == ("'" + FINDINGS_FORMULA,
                                                  "'" + IMPRESSION_BULLET)


def assert_workbook_is_safe(workbook: openpyxl.Workbook, *, texts: bool) -> None:
    assert unsafe_xlsx_cells(workbook) == []
    assert ("report_texts" in workbook.sheetnames) is texts
    if texts:
        rows = list(workbook["report_texts"].iter_rows(values_only=True))
        header = rows[0]
        assert ("'" + FINDINGS_FORMULA, "'" + IMPRESSION_BULLET) in {
            (row[header.index("findings")], row[header.index("impression")]) for row in rows}
    cases = workbook["cases"]
    header = [c.value for c in cases[1]]
    by_case = {row[header.index("case")]: row for row in cases.iter_rows(min_row=2,
                                                                            values_only=True)}
    assert by_case["'=1+2"][header.index("status")] == Case.Status.ENROLLED
    assert by_case["X-1"][header.index("exclusion_reason")] == "'" + HYPERLINK
    assert by_case["X-2"][header.index("exclusion_reason")] == in_xlsx(MID_CR)
    assert by_case["'-15"][header.index("exclusion_reason")] == "'-1.5"
    assert by_case["'" + TAB_CASE][header.index("exclusion_reason")] == in_xlsx("'" + CR_REASON)
    readings = workbook["readings"]
    header = [c.value for c in readings[1]]
    gap = [row[header.index("gap_seconds")] for row in readings.iter_rows(min_row=2)
           if row[header.index("reader")].value == "'" + READER
           and row[header.index("case")].value == "'=1+2"]
    assert [(c.value, c.data_type) for c in gap] == [(NEGATIVE, "n")]
    rating_sheet = workbook["ratings"]
    header = [c.value for c in rating_sheet[1]]
    likert = [row[header.index("value")] for row in rating_sheet.iter_rows(min_row=2)
              if row[header.index("instrument")].value == "likert"]
    assert likert and all(c.data_type == "n" and 2 <= c.value <= 5 for c in likert)
    sources = {row[header.index("source")].value for row in rating_sheet.iter_rows(min_row=2)}
    assert "'" + SOURCE in sources
    dictionary = list(workbook["data dictionary"].iter_rows(values_only=True))
    assert dictionary[-1] == ("(every table)", "(every text cell)", "text",
                              datasets.NEUTRALISATION_NOTE)


def test_statistician_downloads_are_neutralised(hostile, client) -> None:
    trial = hostile.trial
    client.force_login(MembershipFactory(trial=trial, role=Role.STATISTICIAN,
                                         user=UserFactory(username="stat-inject")).user)
    xlsx = client.get(f"/analysis/{trial.slug}/export.xlsx")
    assert xlsx.status_code == 200
    assert_workbook_is_safe(openpyxl.load_workbook(io.BytesIO(xlsx.content)), texts=True)
    response = client.get(f"/analysis/{trial.slug}/export.csv.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert_data_csvs_are_safe({name: archive.read(name) for name in archive.namelist()},
                              texts=True)


def test_analyze_output_is_neutralised(hostile, tmp_path) -> None:
    out = tmp_path / "report"
    call_command("analyze", "--trial", hostile.trial.slug, "--out", str(out), "--no-pdf",
                 "--no-figures", "--no-mixed", stdout=io.StringIO(), stderr=io.StringIO())
    data = {path.name: path.read_bytes() for path in sorted((out / "data").glob("*.csv"))}
    assert_data_csvs_are_safe(data, texts=False)
    assert_workbook_is_safe(openpyxl.load_workbook(out / "data" / "data.xlsx"), texts=False)

    tables = {path.name: path.read_bytes() for path in sorted((out / "tables").glob("*.csv"))}
    assert {"flow.csv", "outcomes.csv", "retrospective.csv"} <= set(tables)
    for name, content in tables.items():
        assert unsafe_csv_fields(content) == [], name
    # The imported source leads a cell of the retrospective table; the formatted numbers and
    # "-" placeholders are text there, and get the quote like any text.
    retrospective = list(csv.reader(io.StringIO(tables["retrospective.csv"].decode())))
    assert retrospective[1][:2] == ["quality", "'" + SOURCE]
    assert any(field.startswith("'-") for row in retrospective for field in row)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["flow"]["exclusion_reasons"][HYPERLINK] == 1  # JSON keeps the raw value
    assert summary["provenance"]["export_note"] == datasets.NEUTRALISATION_NOTE
    assert "against formula injection" in summary["provenance"]["hash_note"]
    assert "against formula injection" in (out / "report.html").read_text()


def test_snapshot_hash_is_over_the_neutralised_files(hostile, tmp_path) -> None:
    """The hash in the provenance is over the bytes the statistician downloads."""
    import hashlib

    from analysis.report import build_report

    files = build_report(hostile.trial, tmp_path / "r", figures=False, pdf=False, mixed=False)
    digest = hashlib.sha256()
    for name in ("cases", "readings", "ratings", "long"):
        content = (Path(files.out_dir) / "data" / f"{name}.csv").read_bytes()
        assert b",'=1+2," in content, name
        digest.update(content)
    summary = json.loads(files.summary.read_text())
    assert summary["provenance"]["data_sha256"] == digest.hexdigest()
