"""The simulation of readings, reviews and ratings: through the services, seeded, and the raw
data carry the simulated effects (checked here with pandas, independently of the simulator)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import transaction

from analysis import datasets
from demo.build import DEMO_SLUG, build_demo
from demo.simulate import CAMPAIGN_NAME, Effects, simulate_trial
from rating.models import Campaign, RaterItem, Rating
from reader.models import Reading, ReadingEvent, Review
from trial.models import Arm, AuditEvent, Trial

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


@pytest.fixture
def demo(django_capture_on_commit_callbacks):
    """``demo(cases)``: the demo trial, its AI drafts made (enrolment queues them on commit,
    which a test's transaction never reaches: run the callbacks as they come)."""
    def make(cases: int) -> Trial:
        with django_capture_on_commit_callbacks(execute=True):
            build_demo(cases=cases, excluded=0, seed=11)
        return Trial.objects.get(slug=DEMO_SLUG)

    return make


def _rating_values(trial: Trial) -> list[tuple]:
    rows = (RaterItem.objects.filter(campaign__trial=trial, rating__isnull=False)
            .select_related("rater__user", "item__case", "item__report", "item__other",
                            "rating"))
    return sorted((ri.rater.user.get_username(), ri.item.case.case_id, ri.item.report.source,
                   ri.item.other.source if ri.item.other_id else "", ri.position,
                   tuple(sorted(ri.rating.values.items())), round(ri.rating.seconds, 6))
                  for ri in rows)


def test_simulation_reads_reviews_and_rates_through_the_services(demo) -> None:
    trial = demo(6)
    summary = simulate_trial(trial, seed=3, fraction=2 / 3)

    assert summary.cases_selected == summary.cases_simulated == 4
    submitted = Reading.objects.filter(assignment__case__trial=trial,
                                       status=Reading.Status.SUBMITTED)
    assert submitted.count() == summary.readings_submitted == 8
    assert Reading.objects.filter(assignment__case__trial=trial).count() == 8  # 2 cases left
    for r in submitted.select_related("assignment"):
        # The model's clock: times set consistently, on the reading and on its events.
        assert r.reading_time_s >= summary.effects.time_min_s
        assert abs((r.submitted_at - r.first_image_at).total_seconds() - r.reading_time_s) < 1e-3
        assert r.active_time_s <= r.reading_time_s
        assert r.opened_at <= r.first_image_at < r.submitted_at
        assert r.events.get(kind=ReadingEvent.Kind.SUBMITTED).at == r.submitted_at
        assert r.labels  # ticked through submit's labels=
        if r.assignment.arm == Arm.AI_ASSISTED:
            assert r.started_from == Reading.Start.DRAFT and r.draft_id
        else:
            assert r.draft_id is None
    reviews = Review.objects.filter(case__trial=trial, status=Review.Status.SIGNED)
    assert reviews.count() == summary.reviews_signed == 4
    assert all(rv.signed_at > max(r.submitted_at for r in submitted.filter(
        assignment__case=rv.case)) for rv in reviews)

    campaign = Campaign.objects.get(trial=trial, name=CAMPAIGN_NAME)
    assert campaign.status == Campaign.Status.OPEN
    assert campaign.raters.count() == 5
    assert summary.items_added == 4 * 3  # per case: two reports, one pair
    ratings = Rating.objects.filter(rater_item__campaign=campaign)
    assert ratings.count() == summary.ratings_submitted == 4 * 3 * 5
    assert not RaterItem.objects.filter(campaign=campaign, rating__isnull=True).exists()

    actions = set(AuditEvent.objects.filter(trial=trial).values_list("action", flat=True))
    assert {"reading.opened", "reading.submitted", "review.opened", "review.signed",
            "campaign.created", "campaign.built", "campaign.opened", "rating.submitted",
            "trial.simulated"} <= actions
    assert AuditEvent.objects.filter(trial=trial, action="reading.submitted").count() == 8

    frame = datasets.ratings(trial)
    assert set(frame.instrument) == {"likert", "radpeer", "preference"}
    assert frame.value[frame.instrument == "likert"].between(1, 5).all()
    assert set(frame.chosen_source[frame.instrument == "preference"]) <= {Arm.AI_ASSISTED,
                                                                          Arm.SCP}

    # Again with the same seed: the same cases, all read already, are left alone.
    again = simulate_trial(trial, seed=3, fraction=2 / 3)
    assert (again.cases_already_read, again.cases_simulated) == (4, 0)
    assert Reading.objects.filter(assignment__case__trial=trial).count() == 8
    # The rest: the remaining two cases, added to the same campaign.
    rest = simulate_trial(trial, seed=3, fraction=1.0)
    assert (rest.cases_already_read, rest.cases_simulated) == (4, 2)
    assert Campaign.objects.filter(trial=trial).count() == 1
    assert Rating.objects.filter(rater_item__campaign=campaign).count() == 6 * 3 * 5


def test_same_seed_same_data_other_seed_other_data(demo) -> None:
    trial = demo(4)

    def run(seed: int) -> list[tuple]:
        try:
            with transaction.atomic():
                simulate_trial(trial, seed=seed, sign_fraction=0.75)
                values = _rating_values(trial)
                times = sorted(datasets.readings(trial)[["case", "arm", "reading_seconds",
                                                         "findings_ticked"]]
                               .itertuples(index=False))
                raise _Rollback
        except _Rollback:
            return [*values, *times]

    first = run(5)
    assert first and run(5) == first
    assert run(6) != first


def test_raw_data_carry_the_simulated_effects(demo) -> None:
    trial = demo(30)
    effects = Effects(likert_scp=2.8, likert_ai_minus_scp=1.0, radpeer_scp=2.9,
                      radpeer_ai_minus_scp=0.8, reader_sd=0.1, time_scp_s=150.0,
                      time_ai_minus_scp_s=-40.0, time_reader_sd_s=5.0, time_noise_sd_s=15.0)
    summary = simulate_trial(trial, seed=2025, effects=effects)
    assert summary.cases_simulated == 30 and summary.ratings_submitted == 30 * 3 * 5

    ratings = datasets.ratings(trial)
    single = ratings[ratings.arm.notna()]
    for instrument, truth in (("likert", 1.0), ("radpeer", 0.8)):
        means = single[single.instrument == instrument].groupby("arm").value.mean()
        observed = means[Arm.AI_ASSISTED] - means[Arm.SCP]
        # Latent means far from 1 and 5: rounding and clipping barely move the difference.
        assert observed == pytest.approx(truth, abs=0.35), (instrument, observed)
    preference = ratings[ratings.instrument == "preference"]
    share_ai = (preference.chosen_source == Arm.AI_ASSISTED).mean()
    assert share_ai == pytest.approx(summary.expected_preference_ai, abs=0.15)
    assert share_ai > 0.6

    readings = datasets.readings(trial)
    readings = readings[readings.status == Reading.Status.SUBMITTED]
    assert len(readings) == 60
    means = readings.groupby("arm").reading_seconds.mean()
    assert means[Arm.SCP] == pytest.approx(150 + 35 * readings.complex_case.mean(), abs=25)
    assert means[Arm.AI_ASSISTED] - means[Arm.SCP] == pytest.approx(-40, abs=15)
    paired = readings.pivot(index="case", columns="arm", values="reading_seconds")
    assert (paired[Arm.AI_ASSISTED] - paired[Arm.SCP]).mean() == pytest.approx(-40, abs=15)


def test_command_prints_the_summary_and_refuses_to_redo_cases(demo, capsys) -> None:
    demo(3)
    call_command("simulate_trial", "--trial", DEMO_SLUG, "--seed", "1", "--fraction", "1",
                 "--throwaway")
    out = capsys.readouterr().out
    assert "simulated 3" in out and "Truth:" in out
    call_command("simulate_trial", "--trial", DEMO_SLUG, "--seed", "1", "--throwaway")
    out = capsys.readouterr().out
    assert "already read" in out and "Nothing to simulate" in out


def test_simulated_readings_are_flagged_from_their_simulated_time(demo) -> None:
    """The services stamp a near-zero reading time that the simulation replaces: the
    short-reading flag must follow the simulated time, not the stamp."""
    from reader.reading import reading_flags

    trial = demo(4)
    simulate_trial(trial, seed=3)
    submitted = Reading.objects.filter(assignment__case__trial=trial, status="submitted")
    assert submitted.exists()
    for r in submitted:
        assert r.flags == reading_flags(r), (r.pk, r.reading_time_s, r.flags)
    assert not any("short_reading" in r.flags for r in submitted if r.reading_time_s >= 10)


def test_leave_unrated_leaves_the_last_items_of_each_rater_and_keeps_the_other_values(
    demo,
) -> None:
    """The demo leaves each rater something to rate; the ratings it does submit are the ones
    a run rating everything gives (the draws are made all the same)."""
    trial = demo(6)
    with pytest.raises(_Rollback), transaction.atomic():
        simulate_trial(trial, seed=3, fraction=2 / 3)
        everything = _rating_values(trial)
        raise _Rollback
    summary = simulate_trial(trial, seed=3, fraction=2 / 3, leave_unrated=2)
    left = RaterItem.objects.filter(campaign__trial=trial, rating__isnull=True)
    raters = set(RaterItem.objects.filter(campaign__trial=trial).values_list("rater", flat=True))
    assert summary.items_left_unrated == left.count() == 2 * len(raters)
    for rater in raters:
        positions = sorted(RaterItem.objects.filter(campaign__trial=trial, rater=rater)
                           .values_list("position", flat=True))
        assert sorted(left.filter(rater=rater).values_list("position", flat=True)
                      ) == positions[-2:]
    kept = _rating_values(trial)
    assert summary.ratings_submitted == len(kept) == len(everything) - left.count()

    def unplaced(rows: list[tuple]) -> set[tuple]:  # positions follow database ids
        return {row[:4] + row[5:] for row in rows}

    assert unplaced(kept) <= unplaced(everything)
