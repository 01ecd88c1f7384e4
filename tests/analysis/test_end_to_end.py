"""End to end: the demo trial, simulated readings and ratings from a known generating model,
then the platform's own analysis (datasets -> summarize) recovers the simulated arm effects."""

from __future__ import annotations

import pytest

from analysis import datasets
from analysis.summary import summarize
from demo.build import DEMO_SLUG, build_demo
from demo.simulate import Effects, simulate_trial
from trial.models import Arm, Trial

pytestmark = pytest.mark.django_db

EFFECTS = Effects(likert_scp=3.0, likert_ai_minus_scp=0.8, radpeer_scp=3.0,
                  radpeer_ai_minus_scp=0.6, reader_sd=0.1, time_scp_s=150.0,
                  time_ai_minus_scp_s=-30.0, time_reader_sd_s=5.0, time_noise_sd_s=15.0)


@pytest.fixture
def analysed(django_capture_on_commit_callbacks) -> tuple[dict, object]:
    with django_capture_on_commit_callbacks(execute=True):
        build_demo(cases=30, excluded=2, seed=5)
    trial = Trial.objects.get(slug=DEMO_SLUG)
    truth = simulate_trial(trial, seed=99, effects=EFFECTS)
    readings = datasets.readings(trial)
    summary = summarize(datasets.ratings(trial), readings,
                        datasets.cases(trial, readings_frame=readings), mixed=True)
    return summary, truth


def test_the_analysis_recovers_the_simulated_arm_effects(analysed) -> None:
    summary, truth = analysed
    for outcome, expected in (("quality", truth.expected_likert_difference),
                              ("agreement", truth.expected_radpeer_difference)):
        entry = summary["outcomes"][outcome]
        assert entry["available"], entry
        # Independent t over reports (as published), paired by case, and the mixed model all
        # estimate AI-assisted minus SCP; each within sampling error of the truth, and each
        # 95% CI covers it.
        for method in ("student", "paired", "mixed_model"):
            result = entry[method]
            estimate = result["difference"] if method != "mixed_model" else result["effect"]
            assert estimate == pytest.approx(expected, abs=0.3), (outcome, method, estimate)
            assert result["ci_low"] <= expected <= result["ci_high"], (outcome, method, result)
            assert result["p"] < 0.01, (outcome, method)

    time = summary["reading_time"]["overall"]
    # reported as SCP minus AI-assisted: the reduction
    assert time["student"]["difference"] == pytest.approx(-truth.true_reading_time_difference_s,
                                                          abs=12)
    assert time["reduction_percent"] > 0

    comparisons = summary["preference"]["comparisons"]
    (entry,) = [c for c in comparisons.values() if {c["a"], c["b"]} == {Arm.AI_ASSISTED,
                                                                       Arm.SCP}]
    # B's own share (not 1 - A's: with an even panel a tie counts for neither)
    share_ai = entry["share"] if entry["a"] == Arm.AI_ASSISTED else entry["share_b"]
    assert share_ai > 0.5

    flow = summary["flow"]
    assert flow["enrolled"] == 30 and flow["excluded"] == 2
