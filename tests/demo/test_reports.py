"""The simulated reports do not give their arm away: AI-assisted and SCP readers write from one
pool of phrasings (the demo model's drafts come from it too), so a rater cannot tell the
source from the wording.

The classifier a curious rater would use: the first sentence of the findings (or its first
three words) -> the arm most often seen with it. Its accuracy is estimated by two-fold
cross-validation over cases (trained on one half of the cases, scored on the other, and the
other way round), never on the reports it was trained on: with many distinct sentences a
lookup table scored in-sample is right by construction. A sentence not seen in training, or
seen equally often in both arms, scores one half (a coin).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from demo.build import DEMO_SLUG, build_demo
from demo.cases import demo_records
from demo.reports import edit_draft, scp_report
from demo.simulate import Effects, see, simulate_trial, truth_of
from drafting.backends import (
    classify_sentence,
    demo_case,
    demo_reply,
    split_sentences,
    write_report,
)
from drafting.parsing import parse_report
from reader.models import Reading
from trial.dicom.synthetic import ImageFinding
from trial.models import Arm, Trial

AI, SCP = Arm.AI_ASSISTED, Arm.SCP


def first_sentence(findings: str) -> str:
    sentences = split_sentences(findings)
    return sentences[0] if sentences else ""


def first_words(findings: str) -> str:
    return " ".join(findings.lower().split()[:3])


def cross_validated_accuracy(pairs: list[tuple[str, str]], feature) -> float:
    """``pairs``: (AI report, SCP report) per case. Two-fold over cases, see the docstring."""
    folds = (pairs[0::2], pairs[1::2])
    correct, n = 0.0, 0
    for train, test in ((folds[0], folds[1]), (folds[1], folds[0])):
        votes: dict[str, Counter] = defaultdict(Counter)
        for ai, scp in train:
            votes[feature(ai)][AI] += 1
            votes[feature(scp)][SCP] += 1
        for ai, scp in test:
            for report, arm in ((ai, AI), (scp, SCP)):
                count = votes.get(feature(report), Counter())
                if count[AI] == count[SCP]:
                    correct += 0.5
                else:
                    correct += (count[AI] > count[SCP]) == (arm == AI)
                n += 1
    return correct / n


def simulated_pairs(cases: int, effects: Effects, seed: int) -> list[tuple[str, str]]:
    """(AI-arm findings, SCP findings) per case, made exactly as ``simulate_trial`` makes them
    (the same truth, perception, draft, edit and writing functions) without the database."""
    rng = np.random.default_rng(seed)
    pairs = []
    for record in demo_records(cases, seed=seed):
        truth, is_demo = truth_of(record.history, rng, effects)
        assert is_demo
        draft = demo_reply(prompt=f"History: {record.history}", png=b"")
        draft_findings, draft_impression = parse_report(draft.text)
        ai, _ = edit_draft(draft_findings, draft_impression,
                           [s.finding for s in see(truth, AI, effects, rng)], rng)
        scp, _ = scp_report([s.finding for s in see(truth, SCP, effects, rng)], rng)
        pairs.append((ai, scp))
    return pairs


# 3,000 cases, 6,000 reports: a classifier at chance scores 0.5 with SD 0.5 / sqrt(6000) =
# 0.0065, so +-0.025 is about four SDs. Equal sensitivities in both arms: whatever it finds
# would be style, not content.
SAME_EYES = Effects(sensitivity_ai=0.8, sensitivity_scp=0.8, pneumonia_sensitivity_ai=0.8,
                    pneumonia_sensitivity_scp=0.8)


@pytest.mark.parametrize("feature", [first_sentence, first_words], ids=["sentence", "words"])
def test_no_first_sentence_rule_tells_the_arms_apart(feature) -> None:
    pairs = simulated_pairs(3000, SAME_EYES, seed=17)
    assert len({first_sentence(ai) for ai, _ in pairs}) > 50  # many openings, in both arms
    assert cross_validated_accuracy(pairs, feature) == pytest.approx(0.5, abs=0.025)


def test_with_the_trials_effects_only_content_differs() -> None:
    """With the default effects the AI arm reports pneumonia more often (the effect the trial
    measures), which a first-sentence rule can pick up a little: at most half the difference
    in how often a report opens with it. Bounded here at 0.5 + 0.04 (the content effect,
    about 0.02, plus four SDs)."""
    pairs = simulated_pairs(3000, Effects(), seed=18)
    accuracy = cross_validated_accuracy(pairs, first_sentence)
    assert 0.47 < accuracy < 0.54


def test_the_ai_arm_reader_keeps_what_they_agree_with_and_corrects_the_rest() -> None:
    rng = np.random.default_rng(3)
    consolidation = ImageFinding("consolidation", side="right", lobe="lower")
    effusion = ImageFinding("effusion", side="right", size="small")
    nodule = ImageFinding("nodule", side="left", zone="mid", cm=1.5)
    findings, impression = write_report([consolidation, nodule], rng)
    # Agrees with everything: the draft is kept word for word.
    assert edit_draft(findings, impression, [consolidation, nodule], rng) == (
        findings, impression)
    # The nodule is not there and an effusion the draft missed is.
    edited, new_impression = edit_draft(findings, impression, [consolidation, effusion], rng)
    kinds = [classify_sentence(s) for s in split_sentences(edited)]
    assert ("finding", "nodule", "left") not in kinds
    assert ("finding", "effusion", "right") in kinds
    assert ("finding", "consolidation", "right") in kinds
    assert not any(k and k[0] == "normal" and "pleura" in k[1] for k in kinds)
    kept = set(split_sentences(findings)) & set(split_sentences(edited))
    assert len(kept) >= len(split_sentences(findings)) - 2  # most of the draft stays
    assert new_impression != impression and "effusion" in new_impression.lower()


@pytest.fixture
def simulated_demo(django_capture_on_commit_callbacks) -> Trial:
    with django_capture_on_commit_callbacks(execute=True):
        build_demo(cases=30, excluded=0, seed=2025)
    trial = Trial.objects.get(slug=DEMO_SLUG)
    simulate_trial(trial, seed=2025, fraction=1.0)
    return trial


@pytest.mark.django_db
def test_the_demos_own_reports_do_not_tell_their_arm(simulated_demo: Trial) -> None:
    """The reports the demo's simulation submitted (30 cases, 60 reports): the arms open with
    the same kinds of sentences, and the best first-sentence rule is near chance. 60 reports
    give an accuracy SD of 0.5 / sqrt(60) = 0.065: +-0.2 is three SDs."""
    by_case: dict[int, dict[str, str]] = defaultdict(dict)
    for r in Reading.objects.filter(assignment__case__trial=simulated_demo,
                                    status=Reading.Status.SUBMITTED).select_related("assignment"):
        by_case[r.assignment.case_id][r.assignment.arm] = r.findings
    pairs = [(arms[AI], arms[SCP]) for arms in by_case.values() if len(arms) == 2]
    assert len(pairs) == 30
    for feature in (first_sentence, first_words):
        assert cross_validated_accuracy(pairs, feature) == pytest.approx(0.5, abs=0.2)
    # No fixed opening: the most common first sentence opens few reports of either arm.
    for arm_reports in ([ai for ai, _ in pairs], [scp for _, scp in pairs]):
        top = Counter(first_sentence(r) for r in arm_reports).most_common(1)[0][1]
        assert top <= 8
    # Every sentence of every report comes from the shared pool.
    for ai, scp in pairs:
        for sentence in split_sentences(ai) + split_sentences(scp):
            assert classify_sentence(sentence) is not None, sentence


@pytest.mark.django_db
def test_the_simulation_reports_what_the_case_shows(simulated_demo: Trial) -> None:
    """A reader's report names the findings of the case's truth, bar the over-calls of the
    generating model (a minor finding, 2% for each of six labels: about 11% of reports;
    bounded at twice that); the ticked labels and the text agree."""
    over_calls, readings = 0, 0
    for r in Reading.objects.filter(assignment__case__trial=simulated_demo).select_related(
            "assignment__case"):
        readings += 1
        truth = demo_case(r.assignment.case.history)
        true = {(f.kind, f.side) for f in truth.findings}
        named = [c for s in split_sentences(r.findings)
                 if (c := classify_sentence(s)) and c[0] == "finding"]
        over_calls += any((kind, side) not in true for _, kind, side in named)
        assert bool(set(r.labels) - {"No Finding"}) == bool(named), r.findings
    assert readings == 60
    assert over_calls <= 0.22 * readings


def test_the_first_sentence_rule_is_not_fooled_by_a_fixed_opening() -> None:
    """The check itself: a fixed opening in one arm (as the demo had) is found at once."""
    pairs = [("Frontal chest radiograph. " + ai, scp)
             for ai, scp in simulated_pairs(200, SAME_EYES, seed=5)]
    # (An SCP opening not seen in training scores a coin: hence not 1.)
    assert cross_validated_accuracy(pairs, first_sentence) > 0.85
