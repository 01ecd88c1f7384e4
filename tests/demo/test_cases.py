"""Each demo case has one truth, and its history, age, image, AI draft and reports follow it.

The mapping the cases and drafts are held to is ``drafting.backends.DEMO_QUESTIONS``: the
clinical question at the end of a history names the kinds of finding consistent with it:

    pneumonia                     consolidation (+ a small effusion)
    tuberculosis                  upper-zone tuberculosis (+ a small effusion)
    malignancy                    mass or nodule (+ a small effusion)
    cardiac failure               cardiomegaly (+ oedema, small effusions)
    pneumothorax                  pneumothorax
    pleural effusion              effusion
    rib fracture or pneumothorax  rib fracture, pneumothorax, or nothing
    line position                 a central line
    infection                     consolidation, or nothing
    atelectasis or infection      atelectasis or consolidation, or nothing
    consolidation (asthma)        nothing
    pre-operative baseline        nothing

A draft may differ from its case's truth only by the demo model's declared errors: a missed
finding, or one minor extra (atelectasis, a small effusion, a small nodule), never another
disease.
"""

from __future__ import annotations

import re
from collections import Counter

import pydicom
import pytest

from demo.build import DEMO_SLUG, build_demo
from demo.cases import SCENARIOS, demo_records
from drafting.backends import (
    DEMO_EXTRA_KINDS,
    DEMO_QUESTIONS,
    classify_sentence,
    demo_case,
    demo_case_in_prompt,
    demo_reply,
    split_sentences,
)
from drafting.models import DEFAULT_PROMPT_TEMPLATE, fill_template
from drafting.queries import current_draft
from trial.dicom.deid import patient_age
from trial.models import Case, Trial

# Questions whose answer is always on the film: the case shows what was asked about.
ALWAYS = {"pneumonia": {"consolidation"}, "tuberculosis": {"tb"},
          "malignancy": {"mass", "nodule"}, "cardiac failure": {"cardiomegaly"},
          "pneumothorax": {"pneumothorax"}, "pleural effusion": {"effusion"},
          "line position": {"line"}}
NEVER = {"consolidation", "pre-operative baseline"}  # normal films


def history_age(history: str) -> int:
    return int(re.match(r"(\d+)-year-old", history).group(1))


def draft_kinds(text: str) -> set[tuple[str, str]]:
    """(kind, side) of every finding a draft's findings name (all its sentences are the
    pool's: None would be a bug)."""
    out = set()
    for sentence in split_sentences(text):
        found = classify_sentence(sentence)
        assert found is not None, sentence
        if found[0] == "finding":
            out.add((found[1], found[2]))
    return out


def test_every_case_follows_from_one_truth() -> None:
    records = demo_records(600, seed=3)
    assert len({r.history for r in records}) == 600
    assert Counter(r.truth.question for r in records).keys() == set(DEMO_QUESTIONS)
    for r in records:
        assert history_age(r.history) == r.age and 18 <= r.age <= 89
        assert r.history.split(". ")[0].endswith("man" if r.sex == "M" else "woman")
        assert demo_case(r.history) == r.truth  # the truth is the history's, every time
        allowed, _ = DEMO_QUESTIONS[r.truth.question]
        kinds = {f.kind for f in r.truth.findings}
        assert kinds <= set(allowed), (r.history, kinds)
        if r.truth.question in ALWAYS:
            assert kinds & ALWAYS[r.truth.question], r.history
        if r.truth.question in NEVER:
            assert not kinds, r.history
        # A side the history names is the side of the findings.
        named = re.search(r"\b(right|left)\b", r.history)
        for f in r.truth.findings:
            if named and f.side in ("right", "left") and f.kind not in DEMO_EXTRA_KINDS:
                assert f.side == named.group(1), r.history
        # The draft: the truth but for the model's declared errors, which are rare.
        assert set(r.truth.draft) == (set(r.truth.findings) - set(r.truth.missed)) | set(
            r.truth.extra)
        assert {f.kind for f in r.truth.extra} <= set(DEMO_EXTRA_KINDS)
    wrong = sum(bool(r.truth.missed or r.truth.extra) for r in records)
    assert 0.03 < wrong / len(records) < 0.15  # an occasional error, as a real model makes
    assert sum(r.truth.normal for r in records) / len(records) > 0.15  # normal films too


def test_the_demo_model_drafts_the_truth_of_a_demo_case_only() -> None:
    record = next(r for r in demo_records(40, seed=1) if r.truth.question == "tuberculosis")
    prompt = fill_template(DEFAULT_PROMPT_TEMPLATE, {
        "chief_complaint": record.chief_complaint, "history": record.history,
        "lab_results": record.lab_results, "prior_imaging": record.prior_imaging,
        "age": str(record.age), "sex": "Male"})
    assert demo_case_in_prompt(prompt) == record.truth
    reply = demo_reply(prompt=prompt, png=b"any")
    assert reply.text == demo_reply(prompt=prompt, png=b"other").text  # not the image's hash
    # Not a demo history: the canned text chosen from the history's words, as before.
    other = demo_reply(prompt="History: Productive cough and fever for 6 days", png=b"x")
    assert other.text.startswith("FINDINGS: Patchy airspace opacity in the right lower zone")
    assert demo_case("Cough. Clinical question: tuberculosis?") is None


def test_scenarios_cover_the_questions_in_the_demos_proportions() -> None:
    assert sum(s.weight for s in SCENARIOS) == 30
    questions = Counter(r.truth.question for r in demo_records(30, seed=2025))
    assert questions == {s.question: s.weight for s in SCENARIOS}


@pytest.mark.django_db
def test_each_built_case_agrees_with_its_image_header_and_draft(
        django_capture_on_commit_callbacks) -> None:
    """The built demo: the history's age is the case's and the stored DICOM's, the sex too,
    and the draft names the case's truth (bar the declared errors) and nothing the clinical
    question rules out."""
    with django_capture_on_commit_callbacks(execute=True):
        build_demo(cases=24, excluded=0, seed=2025)
    trial = Trial.objects.get(slug=DEMO_SLUG)
    cases = list(Case.objects.filter(trial=trial).prefetch_related("images"))
    assert len(cases) == 24
    for case in cases:
        truth = demo_case(case.history)
        assert truth is not None, case.history
        with case.images.get().file.open("rb") as fh:
            ds = pydicom.dcmread(fh)
        assert history_age(case.history) == case.age == patient_age(ds) == truth.age
        assert case.sex == ds.PatientSex == truth.sex
        assert ds.Manufacturer == "SYNTHETIC"
        draft = current_draft(case)
        assert draft is not None and draft.is_demo
        named = draft_kinds(draft.findings)
        expected = {(f.kind, f.side) for f in truth.draft}
        assert named == expected, (case.history, draft.findings)
        allowed, _ = DEMO_QUESTIONS[truth.question]
        assert {kind for kind, _ in named} <= set(allowed) | set(DEMO_EXTRA_KINDS)
        if truth.normal and not truth.extra:
            assert not named, draft.findings  # a normal film, a normal draft
