"""The tidy tables built from the database: one row per rating value, one per reading."""

from __future__ import annotations

import pytest

from analysis import datasets
from rating import ratings
from rating.models import RaterItem
from reader.models import Reading, Review
from tests.support.campaign_world import build_campaign_world
from trial.models import Arm

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
        assert row.answer == "A" and row.value == expected
    likert = frame[frame.instrument == "likert"]
    assert set(likert.value) == {4.0} and set(likert.arm.dropna()) == {Arm.AI_ASSISTED, Arm.SCP}
    assert likert[likert.source == "ai_alone"].arm.isna().all()
    errors = frame[frame.instrument == "errors.omitted_finding.insignificant"]
    assert set(errors.value) == {2.0}
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
