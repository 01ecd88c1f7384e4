"""The tidy tables built from the database: one row per rating value, one per reading."""

from __future__ import annotations

import io
import math
import re
import zipfile
from datetime import datetime

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from analysis import datasets
from rating import instruments as inst
from rating import ratings
from rating.models import RaterItem, Rating
from reader import reading as reading_service
from reader import review as review_service
from reader.models import Reading, Review
from tests.support.campaign_world import build_campaign_world
from tests.support.factories import PASSWORD, MembershipFactory, UserFactory
from tests.support.read_world import build_read_world
from trial.models import Arm, Membership, Role

pytestmark = pytest.mark.django_db


def answer_everything(world) -> None:
    for ri in RaterItem.objects.filter(campaign=world.campaign).select_related("item"):
        values = {}
        for code in ri.item.instruments:
            values[code] = {"likert": "4", "radpeer": "5", "acceptability": "B",
                            "preference": "A", "source_id": "B",
                            "errors": {"omitted_finding": {"significant": 1,
                                                           "insignificant": 2}}}[code]
        ratings.open_item(ri)
        ratings.submit(ri, values, by=ri.rater.user)


def test_rating_rows_resolve_pairs_through_each_raters_sides(tmp_path) -> None:
    world = build_campaign_world(tmp_path, raters=3, include_ai_alone=True)
    answer_everything(world)
    frame = datasets.ratings(world.trial)
    assert list(frame.columns) == datasets.RATING_COLUMNS
    preference = frame[frame.instrument == "preference"]
    assert len(preference) == RaterItem.objects.filter(
        campaign=world.campaign, item__instruments__contains=["preference"]).count()
    for row in preference.itertuples():
        ri = RaterItem.objects.select_related("item__report", "item__other").get(
            code=row.item_code)
        # "A" is the left report: the item's `other` when this rater's sides are swapped.
        expected = ri.item.other.source if ri.swapped else ri.item.report.source
        assert row.answer == "A" and row.chosen_source == expected and math.isnan(row.value)
    likert = frame[frame.instrument == "likert"]
    assert set(likert.value) == {4.0} and set(likert.arm.dropna()) == {Arm.AI_ASSISTED, Arm.SCP}
    assert likert[likert.source == "ai_alone"].arm.isna().all()
    errors = frame[frame.instrument == "errors.omitted_finding.insignificant"]
    assert set(errors.value) == {2.0} and set(errors.answer) == {"2"}
    assert (frame.seconds >= 0).all() and frame.rater.str.startswith("rater").all()


def test_reading_rows_have_times_arms_and_senior_distances(tmp_path) -> None:
    world = build_campaign_world(tmp_path, raters=1, open_=False)
    frame = datasets.readings(world.trial)
    assert list(frame.columns) == datasets.READING_COLUMNS
    assert len(frame) == Reading.objects.count() == 4
    for row in frame.itertuples():
        reading = Reading.objects.get(assignment__case__case_id=row.case,
                                      assignment__arm=row.arm)
        assert row.reading_seconds == reading.reading_time_s
        review = Review.objects.get(case__case_id=row.case)
        expected = (review.edit_distance_ai if row.arm == Arm.AI_ASSISTED
                    else review.edit_distance_scp)
        assert row.senior_edit_distance == expected
        assert row.draft_used == (row.arm == Arm.AI_ASSISTED)
    ai = frame[frame.arm == Arm.AI_ASSISTED]
    assert (ai.edit_distance_from_draft > 0).all()
    assert frame[frame.arm == Arm.SCP].edit_distance_from_draft.isna().all()


# --------------------------------------------------------------------------------------------
# Timestamps: UTC ISO 8601 text, to the second
# --------------------------------------------------------------------------------------------

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def assert_timestamp(text: object, stored: datetime | None) -> None:
    """``text`` is the stored moment as UTC ISO 8601 to the second (empty when not stored)."""
    if stored is None:
        assert text is None or (isinstance(text, float) and math.isnan(text))
        return
    assert isinstance(text, str) and ISO_UTC.fullmatch(text), text
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset().total_seconds() == 0
    assert parsed == stored.replace(microsecond=0)


def submit(world, arm: str, index: int, *, image: bool = False) -> Reading:
    """The reading of ``arm`` of the index-th AI-arm case, submitted."""
    case = world.assignment(Arm.AI_ASSISTED, index).case
    assignment = world.readers[arm].assignments.get(case=case)
    opened = reading_service.open_reading(assignment, user=None)
    if image:
        opened = reading_service.record_event(opened, "image_displayed")
    return reading_service.submit(opened, findings=f"{arm} findings {index}.",
                                  impression=f"{arm} impression {index}.",
                                  version=opened.version)


@pytest.fixture
def reading_world(tmp_path):
    """Case 0: both arms submitted (the first image reported), final report signed. Case 1:
    both submitted, final report opened, not signed. Case 2: the AI-arm reading open."""
    world = build_read_world(tmp_path, cases=3)
    for index in (0, 1):
        for arm in (Arm.AI_ASSISTED, Arm.SCP):
            submit(world, arm, index, image=index == 0)
    signed = review_service.open_review(world.assignment(Arm.AI_ASSISTED, 0).case,
                                        senior=world.senior)
    review_service.sign(signed, findings="Reference findings.", impression="Reference.",
                        version=signed.version, by=world.senior.user, password=PASSWORD)
    review_service.open_review(world.assignment(Arm.AI_ASSISTED, 1).case, senior=world.senior)
    reading_service.open_reading(world.assignment(Arm.AI_ASSISTED, 2), user=None)
    return world


def test_reading_timestamps_are_utc_iso_8601_as_stored(reading_world) -> None:
    frame = datasets.readings(reading_world.trial)
    assert len(frame) == Reading.objects.count() == 5
    for row in frame.itertuples():
        reading = Reading.objects.select_related("assignment__case").get(
            assignment__case__case_id=row.case, assignment__arm=row.arm)
        assert_timestamp(row.opened_at, reading.opened_at)
        assert_timestamp(row.first_image_at, reading.first_image_at)
        assert_timestamp(row.submitted_at, reading.submitted_at)
        review = Review.objects.filter(case=reading.assignment.case).first()
        assert_timestamp(row.review_opened_at, review.opened_at if review else None)
        assert_timestamp(row.review_signed_at, review.signed_at if review else None)
    # what the fixture made, so that each column has values and blanks
    assert frame.first_image_at.notna().sum() == 2 and frame.submitted_at.notna().sum() == 4
    assert frame.review_opened_at.notna().sum() == 4 and frame.review_signed_at.notna().sum() == 2


def test_rating_submission_time_is_utc_iso_8601_as_stored(tmp_path) -> None:
    world = build_campaign_world(tmp_path, raters=2)
    answer_everything(world)
    frame = datasets.ratings(world.trial)
    stored = dict(Rating.objects.values_list("rater_item__code", "submitted_at"))
    assert len(frame) and set(frame.item_code) == set(stored)
    for row in frame.itertuples():
        assert_timestamp(row.submitted_at, stored[row.item_code])


def test_utc_iso_converts_other_zones_and_drops_the_fraction() -> None:
    from zoneinfo import ZoneInfo

    moment = datetime(2026, 12, 1, 17, 41, 44, 987654, tzinfo=ZoneInfo("Europe/Berlin"))
    assert datasets.utc_iso(moment) == "2026-12-01T16:41:44Z"
    assert datasets.utc_iso(None) is None


# --------------------------------------------------------------------------------------------
# Typed ratings: value a number or empty, answer text, pair picks in chosen_source
# --------------------------------------------------------------------------------------------

def test_value_is_numeric_answer_is_text_and_acr_codes_stay_text(tmp_path) -> None:
    world = build_campaign_world(tmp_path, raters=2, include_ai_alone=True,
                                 radpeer_variant=inst.RADPEER_ACR2016)
    for number, ri in enumerate(RaterItem.objects.filter(campaign=world.campaign)
                                .select_related("item")):
        values = {}
        for code in ri.item.instruments:
            values[code] = {"likert": "4", "radpeer": "2a" if number % 2 else "1",
                            "acceptability": "B", "preference": "A", "source_id": "B",
                            "errors": {"omitted_finding": {"significant": 1,
                                                           "insignificant": 2}}}[code]
        ratings.open_item(ri)
        ratings.submit(ri, values, by=ri.rater.user)
    frame = datasets.ratings(world.trial)
    assert frame["value"].dtype == "float64" and frame["seconds"].dtype == "float64"
    assert all(isinstance(answer, str) for answer in frame.answer)
    by = {name: frame[frame.instrument == name] for name in set(frame.instrument)}
    assert set(by["likert"].value) == {4.0} and set(by["likert"].answer) == {"4"}
    # ACR RADPEER 2016 codes are categories (1 best): text only, "1" included
    assert set(by["radpeer"].answer) == {"1", "2a"} and by["radpeer"].value.isna().all()
    assert set(by["acceptability"].answer) == {"B"} and by["acceptability"].value.isna().all()
    for pair in ("preference", "source_id"):
        rows = by[pair]
        assert rows.value.isna().all() and rows.chosen_source.notna().all()
        assert set(rows.chosen_source) <= {Arm.AI_ASSISTED, Arm.SCP, "ai_alone"}
    single = frame[frame.item_kind == "single"]
    assert single.chosen_source.isna().all()
    # The long format: value the number, answer the category (the pick, the ACR code).
    long = datasets.long_format(frame, datasets.readings(world.trial))
    rated = long[long.rater.notna()]
    assert list(rated.value.fillna(-1)) == list(frame.value.fillna(-1))
    expected = frame.chosen_source.where(frame.chosen_source.notna(), frame.answer)
    assert list(rated.answer) == list(expected)


def test_summary_reads_the_picks_from_chosen_source(tmp_path) -> None:
    """summary's preference and source identification count the picked sources: the same
    result as from a frame of the old shape (the pick in ``value``, as simulated frames do)."""
    from analysis.summary import preference, source_identification

    world = build_campaign_world(tmp_path, raters=3, include_ai_alone=True)
    answer_everything(world)
    frame = datasets.ratings(world.trial)
    old_shape = frame.drop(columns="chosen_source").assign(
        value=frame.chosen_source.where(frame.chosen_source.notna(), frame.value))
    for summarise in (preference, source_identification):
        result = summarise(frame)
        assert result["available"] and result["comparisons"], summarise
        assert result == summarise(old_shape), summarise
    comparisons = source_identification(frame)["comparisons"].values()
    assert sum(c.get("n_answers", 0) for c in comparisons) == (
        frame.instrument == "source_id").sum()


def test_blinding_reads_the_picks_from_chosen_source(tmp_path) -> None:
    """The blinding assessment scores the source-identification answers of a real export (the
    pick in ``chosen_source``, ``value`` empty): it had read ``value`` only, so every answer
    of a real trial was skipped as unresolved and blinding was never assessed."""
    from analysis.blinding import ai_involved, blinding_assessment

    world = build_campaign_world(tmp_path, raters=3, include_ai_alone=True)
    answer_everything(world)
    frame = datasets.ratings(world.trial)
    answers = frame[frame.instrument == "source_id"]
    assert answers.value.isna().all() and len(answers)
    result = blinding_assessment(frame)
    campaign = result["campaigns"][str(world.campaign.pk)]
    assert campaign["available"], campaign
    # Scored: every answer on a pair with exactly one AI-involved report (counted here).
    kind = world.campaign.kind
    one_ai = [ai_involved(s, kind) != ai_involved(o, kind)
              for s, o in zip(answers.source, answers.other_source, strict=True)]
    assert campaign["n_scored"] == sum(one_ai) > 0
    assert "answer_not_resolved_to_a_source" not in campaign["skipped"]
    # The same as from a frame of the old shape (the pick in value, as simulations make it).
    old_shape = frame.drop(columns="chosen_source").assign(
        value=frame.chosen_source.where(frame.chosen_source.notna(), frame.value))
    assert blinding_assessment(old_shape) == result


# --------------------------------------------------------------------------------------------
# Report texts: a table of their own, in the statistician's downloads only
# --------------------------------------------------------------------------------------------

def expected_texts(trial) -> set[tuple]:
    rows = set()
    for reading in Reading.objects.filter(assignment__case__trial=trial).select_related(
            "assignment__case", "assignment__reader__user", "draft"):
        case = reading.assignment.case.case_id
        if reading.status == Reading.Status.SUBMITTED:
            rows.add((case, reading.assignment.arm, reading.assignment.arm,
                      reading.assignment.reader.user.username, reading.findings,
                      reading.impression, datasets.utc_iso(reading.submitted_at)))
        if reading.assignment.arm == Arm.AI_ASSISTED and reading.draft is not None:
            rows.add((case, "ai_draft", None, None, reading.draft.findings,
                      reading.draft.impression, datasets.utc_iso(reading.draft.finished_at)))
    for review in Review.objects.filter(case__trial=trial, status=Review.Status.SIGNED):
        rows.add((review.case.case_id, "reference", None, None, review.findings,
                  review.impression, datasets.utc_iso(review.signed_at)))
    return rows


def test_report_texts_one_row_per_submitted_reading_reference_and_ai_draft(
        reading_world) -> None:
    trial = reading_world.trial
    frame = datasets.report_texts(trial)
    assert list(frame.columns) == datasets.REPORT_TEXT_COLUMNS
    got = {(r.case, r.source, r.arm, r.reader, r.findings, r.impression, r.submitted_at)
           for r in frame.astype(object).where(frame.notna(), None).itertuples()}
    assert got == expected_texts(trial) and len(frame) == len(got)
    counts = frame.groupby("source").size().to_dict()
    # 4 submitted readings (the open one left out), 3 AI-arm readings with their draft, 1
    # signed final report (the opened one left out)
    assert counts == {Arm.AI_ASSISTED: 2, Arm.SCP: 2, "ai_draft": 3, "reference": 1}
    assert set(frame.loc[frame.source == "reference", "findings"]) == {"Reference findings."}
    for row in frame.itertuples():
        assert ISO_UTC.fullmatch(row.submitted_at)


def test_report_texts_are_in_the_downloads_only(tmp_path, client) -> None:
    world = build_campaign_world(tmp_path, raters=2)
    answer_everything(world)
    trial = world.trial
    texts = datasets.report_texts(trial)
    assert len(texts) == 2 * 2 + 2 + 2  # two cases: two readings, a draft, a reference each
    # Not in the tables the report, its snapshot hash and the statistics are built from
    assert list(datasets.export_frames(trial)) == ["cases", "readings", "ratings", "long"]
    frames = datasets.export_frames(trial, texts=True)
    assert list(frames) == ["cases", "readings", "ratings", "long", "report_texts"]
    for name in ("cases", "readings", "ratings", "long"):
        assert not {"findings", "impression"} & set(frames[name].columns), name

    url = f"/analysis/{trial.slug}/"
    coordinator = Membership.objects.get(trial=trial, role=Role.COORDINATOR).user
    statistician = MembershipFactory(trial=trial, role=Role.STATISTICIAN,
                                     user=UserFactory(username="stat-texts")).user
    for user in (statistician, coordinator):
        client.force_login(user)
        archive = zipfile.ZipFile(io.BytesIO(client.get(f"{url}export.csv.zip").content))
        assert set(archive.namelist()) == {"cases.csv", "readings.csv", "ratings.csv",
                                           "long.csv", "report_texts.csv",
                                           datasets.DICTIONARY_CSV}
        csv_texts = pd.read_csv(io.BytesIO(archive.read("report_texts.csv")), dtype=str,
                                keep_default_na=False)
        assert len(csv_texts) == len(texts)
        assert set(csv_texts.impression) == set(texts.impression)
        sheets = pd.read_excel(io.BytesIO(client.get(f"{url}export.xlsx").content),
                               sheet_name=None, dtype=str, keep_default_na=False)
        assert list(sheets) == ["cases", "readings", "ratings", "long", "report_texts",
                                "data dictionary"]
        assert sorted(sheets["report_texts"].findings) == sorted(texts.findings)
        for name in ("cases", "readings", "ratings", "long"):
            assert not {"findings", "impression"} & set(sheets[name].columns), name
            assert not {"findings", "impression"} & set(
                pd.read_csv(io.BytesIO(archive.read(f"{name}.csv"))).columns), name
    reading_text = texts.loc[texts.source == Arm.AI_ASSISTED, "findings"].iloc[0]
    for user in (world.raters[0].user, world.read.readers[Arm.SCP].user,
                 world.read.senior.user):
        client.force_login(user)
        for path in ("export.xlsx", "export.csv.zip"):
            response = client.get(f"{url}{path}")
            assert response.status_code == 403
            assert reading_text.encode() not in response.content


# --------------------------------------------------------------------------------------------
# The workbook: frozen header, autofilter, widths, numbers as numbers
# --------------------------------------------------------------------------------------------

def test_xlsx_sheets_are_frozen_filtered_sized_and_typed(tmp_path, client) -> None:
    world = build_campaign_world(tmp_path, raters=2, include_ai_alone=True)
    answer_everything(world)
    trial = world.trial
    frames = datasets.export_frames(trial, texts=True)
    client.force_login(MembershipFactory(trial=trial, role=Role.STATISTICIAN,
                                         user=UserFactory(username="stat-xlsx")).user)
    response = client.get(f"/analysis/{trial.slug}/export.xlsx")
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    tables = {**frames, "data dictionary": datasets.data_dictionary(frames)}
    assert workbook.sheetnames == list(tables)
    for name, frame in tables.items():
        sheet = workbook[name]
        assert sheet.freeze_panes == "A2", name
        last = get_column_letter(frame.shape[1])
        assert sheet.auto_filter.ref == f"A1:{last}{len(frame) + 1}", name
        assert [c.value for c in sheet[1]] == list(frame.columns), name
        assert sheet.max_row == len(frame) + 1 and len(frame), name
        for position, column in enumerate(frame.columns, start=1):
            width = sheet.column_dimensions[get_column_letter(position)].width
            assert datasets.MIN_WIDTH <= width <= datasets.MAX_WIDTH, (name, column)
            assert width >= min(len(column), datasets.MAX_WIDTH), (name, column)
            cells = [row[0] for row in sheet.iter_rows(min_row=2, min_col=position,
                                                       max_col=position)]
            dtype = frame[column].dtype
            if pd.api.types.is_bool_dtype(dtype):
                assert {c.data_type for c in cells} == {"b"}, (name, column)
            elif pd.api.types.is_numeric_dtype(dtype):
                assert {c.data_type for c in cells if c.value is not None} <= {"n"}, (
                    name, column)
            elif column.endswith("_at") or column in ("answer", "findings", "impression"):
                assert {c.data_type for c in cells if c.value is not None} <= {"s"}, (
                    name, column)
    ratings_sheet = workbook["ratings"]
    header = [c.value for c in ratings_sheet[1]]
    values = [row[header.index("value")] for row in ratings_sheet.iter_rows(min_row=2)]
    numbers = [c for c in values if c.value is not None]
    assert numbers and all(c.data_type == "n" and isinstance(c.value, int | float)
                           for c in numbers)
    numeric_columns = {"ratings": ["campaign", "value", "seconds"],
                       "readings": ["reading_seconds", "active_seconds", "gap_seconds",
                                    "n_findings", "edit_distance_from_draft",
                                    "senior_edit_distance"],
                       "cases": ["n_readings_submitted"],
                       "long": ["campaign", "value"]}
    for name, columns in numeric_columns.items():
        for column in columns:
            assert pd.api.types.is_numeric_dtype(frames[name][column].dtype), (name, column)


def test_an_empty_trial_still_gets_filtered_frozen_sheets(tmp_path) -> None:
    world = build_read_world(tmp_path, cases=1)
    frames = datasets.export_frames(world.trial, texts=True)
    path = tmp_path / "empty.xlsx"
    datasets.export_xlsx(frames, path)
    workbook = openpyxl.load_workbook(path)
    assert workbook["ratings"].auto_filter.ref == (
        f"A1:{get_column_letter(len(datasets.RATING_COLUMNS))}1")
    assert all(sheet.freeze_panes == "A2" for sheet in workbook.worksheets)


# --------------------------------------------------------------------------------------------
# The data dictionary: every column of every exported table described
# --------------------------------------------------------------------------------------------

def test_every_exported_column_is_described(tmp_path) -> None:
    world = build_campaign_world(tmp_path, raters=2, include_ai_alone=True)
    answer_everything(world)
    frames = datasets.export_frames(world.trial, texts=True)
    assert set(frames) == set(datasets.DATA_DICTIONARY)
    for table, frame in frames.items():
        described = datasets.DATA_DICTIONARY[table]
        assert list(described) and set(described) == set(frame.columns), table
        for column, (kind, text) in described.items():
            assert kind.strip() and len(text.strip()) > 3, (table, column)
            if column.endswith("_at"):
                assert "UTC" in kind and "ISO 8601" in kind, (table, column)
    dictionary = datasets.data_dictionary(frames)
    assert not (dictionary.description == "(not documented)").any()
    assert len(dictionary) == 1 + sum(frame.shape[1] for frame in frames.values())
    assert {"chosen_source", "submitted_at"} <= set(
        dictionary.loc[dictionary.table == "ratings", "column"])
    value = dictionary[(dictionary.table == "ratings") & (dictionary.column == "value")].iloc[0]
    assert value.type == "number"
