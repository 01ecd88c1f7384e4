"""BLEU and ROUGE-L (metrics.text) against NLTK's and rouge-score's own outputs.

Every expected number is either printed in the libraries' documentation or computed here by
the libraries themselves (or by hand, where the comment shows the arithmetic).
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from nltk.translate import bleu_score as nltk_bleu
from rouge_score import rouge_scorer
from rouge_score import tokenize as rouge_tokenize

from metrics import text

# NLTK's docstring example (nltk.translate.bleu_score.corpus_bleu / sentence_bleu).
HYP1 = ["It", "is", "a", "guide", "to", "action", "which", "ensures", "that", "the", "military",
        "always", "obeys", "the", "commands", "of", "the", "party"]
REF1A = ["It", "is", "a", "guide", "to", "action", "that", "ensures", "that", "the", "military",
         "will", "forever", "heed", "Party", "commands"]
REF1B = ["It", "is", "the", "guiding", "principle", "which", "guarantees", "the", "military",
         "forces", "always", "being", "under", "the", "command", "of", "the", "Party"]
REF1C = ["It", "is", "the", "practical", "guide", "for", "the", "army", "always", "to", "heed",
         "the", "directions", "of", "the", "party"]
HYP2 = ["he", "read", "the", "book", "because", "he", "was", "interested", "in", "world",
        "history"]
REF2A = ["he", "was", "interested", "in", "world", "history", "because", "he", "read", "the",
         "book"]
# sentence_bleu's docstring: a hypothesis with no 3- or 4-gram overlap.
HYP_NO_34 = ["It", "is", "to", "insure", "the", "troops", "forever", "hearing", "the", "activity",
             "guidebook", "that", "party", "direct"]

WORDS = (
    "heart", "size", "is", "normal", "there", "no", "focal", "consolidation", "pleural",
    "effusion", "or", "pneumothorax", "mild", "bibasilar", "atelectasis", "lungs", "are", "clear",
    "cardiomediastinal", "silhouette", "within", "limits", "stable", "left", "lower", "lobe",
    "opacity", "support", "devices", "in", "place", "tube", "tip", "above", "the", "carina",
    "right", "small", "moderate",
)


def report(rng: random.Random, length: int) -> str:
    """A random-ish report: repeated words and shared phrases make n-gram matches likely."""
    words = []
    while len(words) < length:
        if rng.random() < 0.3:
            words.extend(["no", "pleural", "effusion"])
        else:
            words.append(rng.choice(WORDS))
    sentence = " ".join(words[:length])
    return sentence.capitalize() + ("." if length else "")


def corpus(seed: int, n: int) -> tuple[list[str], list[str]]:
    """``n`` (hypothesis, reference) pairs of varied length, some identical, some very short."""
    rng = random.Random(seed)
    lengths = [0, 1, 2, 3, 5, 60, 8] + [rng.randint(4, 70) for _ in range(n)]
    hyps = [report(rng, lengths[i]) for i in range(n)]
    refs = [report(rng, rng.randint(3, 70)) for _ in range(n)]
    refs[4] = hyps[4]  # one identical pair
    refs[6] = "Heart size is normal!!  No pleural effusion; no pneumothorax."
    return hyps, refs


def nltk_corpus_bleu(hyps: list[str], refs: list[str], n: int) -> float:
    with warnings.catch_warnings():  # NLTK warns on zero higher-order matches
        warnings.simplefilter("ignore")
        return nltk_bleu.corpus_bleu([[text.tokenize(r)] for r in refs],
                                     [text.tokenize(h) for h in hyps], weights=(1.0 / n,) * n)


def test_descriptions_are_sentences() -> None:
    assert "rouge-score" in text.TOKENISATION and "method 1" in text.SMOOTHING


def test_tokenize_is_rouge_scores_tokenizer() -> None:
    sample = "Heart size NORMAL.  No pleural-effusion; 3 cm nodule (R/L)!"
    assert text.tokenize(sample) == rouge_tokenize.tokenize(sample, None)
    assert text.tokenize(sample) == ["heart", "size", "normal", "no", "pleural", "effusion",
                                     "3", "cm", "nodule", "r", "l"]
    assert text.tokenize("") == [] and text.tokenize("...") == []


def test_rouge_l_documented_example() -> None:
    # rouge-score's RougeScorer docstring. Target: the quick brown fox jumps over the lazy dog
    # (9 tokens); prediction: the quick brown dog jumps on the log (8 tokens). LCS = "the quick
    # brown jumps the" = 5, so P = 5/8, R = 5/9, F = 2PR/(P+R) = (50/72)/(85/72) = 10/17.
    target = "The quick brown fox jumps over the lazy dog"
    prediction = "The quick brown dog jumps on the log."
    library = rouge_scorer.RougeScorer(["rougeL"]).score(target, prediction)["rougeL"].fmeasure
    assert text.rouge_l(prediction, target) == library
    assert text.rouge_l(prediction, target) == pytest.approx(10 / 17, abs=1e-15)


def test_rouge_l_hand_computed() -> None:
    # hypothesis: small left pleural effusion (4 tokens); reference: no left sided pleural
    # effusion is seen (7 tokens). LCS = "left pleural effusion" = 3, P = 3/4, R = 3/7,
    # F = 2PR/(P+R) = (18/28)/(33/28) = 6/11.
    hypothesis = "Small left pleural effusion."
    reference = "No left-sided pleural effusion is seen."
    assert text.rouge_l(hypothesis, reference) == pytest.approx(6 / 11, abs=1e-15)
    # F is symmetric in P and R: swapping the texts changes nothing.
    assert text.rouge_l(reference, hypothesis) == pytest.approx(6 / 11, abs=1e-15)


def test_nltk_docstring_corpus_bleu_from_summed_stats() -> None:
    # nltk's corpus_bleu docstring prints 0.5920...; the full value from nltk is below.
    stats = (text.bleu_stats_tokens(HYP1, [REF1A, REF1B, REF1C])
             + text.bleu_stats_tokens(HYP2, [REF2A]))
    assert text.corpus_bleu(stats, 4) == pytest.approx(0.5920778868801042, abs=1e-15)
    assert nltk_bleu.corpus_bleu([[REF1A, REF1B, REF1C], [REF2A]], [HYP1, HYP2]) == (
        pytest.approx(0.5920778868801042, abs=1e-15))
    # sentence_bleu's docstring: 0.5045... for the first pair alone (no smoothing needed).
    one = text.bleu_stats_tokens(HYP1, [REF1A, REF1B, REF1C])
    assert text.corpus_bleu(one, 4) == pytest.approx(
        nltk_bleu.sentence_bleu([REF1A, REF1B, REF1C], HYP1), abs=1e-15)
    assert text.corpus_bleu(one, 4) == pytest.approx(0.5045, abs=1e-4)


def test_nltk_docstring_smoothed_sentence_bleu() -> None:
    # sentence_bleu's docstring: no 3-/4-gram overlap -> 0 unsmoothed, 0.0370... with method1.
    refs = [REF1A, REF1B, REF1C]
    stats = text.bleu_stats_tokens(HYP_NO_34, refs)
    assert stats[2] == stats[3] == 0
    smoothed = nltk_bleu.sentence_bleu(
        refs, HYP_NO_34, smoothing_function=nltk_bleu.SmoothingFunction().method1)
    assert smoothed == pytest.approx(0.0370, abs=1e-4)
    assert text._bleu(stats, 4, smoothed=True) == pytest.approx(smoothed, abs=1e-15)
    assert text.corpus_bleu(stats, 4) == 0.0  # NLTK: ~1e-77 (its 1e-308 stand-in)


def test_bleu_stats_are_nltks_modified_precision() -> None:
    hyp, ref = "No pleural effusion. No pleural effusion.", "There is no pleural effusion."
    stats = text.bleu_stats(hyp, ref)
    h, r = text.tokenize(hyp), text.tokenize(ref)
    # Clipped: "no" twice in the hypothesis, once in the reference -> 3 unigram matches of 6.
    assert stats.tolist() == [3, 2, 1, 0, 6, 5, 4, 3, 6, 5]
    for n in range(1, 5):
        p = nltk_bleu.modified_precision([r], h, n)
        assert (stats[n - 1], stats[3 + n]) == (p.numerator, p.denominator)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 4])
def test_corpus_bleu_from_summed_stats_equals_nltk(seed: int, n: int) -> None:
    hyps, refs = corpus(seed, 20)
    stats = np.array([text.bleu_stats(h, r) for h, r in zip(hyps, refs, strict=True)])
    assert text.corpus_bleu(stats.sum(axis=0), n) == pytest.approx(
        nltk_corpus_bleu(hyps, refs, n), abs=1e-12)
    # Any subset of reports is just a smaller sum.
    subset = [0, 3, 5, 8, 13]
    assert text.corpus_bleu(stats[subset].sum(axis=0), n) == pytest.approx(
        nltk_corpus_bleu([hyps[i] for i in subset], [refs[i] for i in subset], n), abs=1e-12)


def test_corpus_bleu_edge_cases_match_nltk() -> None:
    cases = [
        (["", ""], ["no effusion", "clear lungs"]),  # empty hypotheses: BP 0
        (["heart normal", "lungs clear"], ["", ""]),  # empty references
        (["effusion left", "clear lungs"], ["left effusion", "lungs clear"]),  # no bigram match
        (["a b c d e f"], ["a b c d e f"]),  # perfect
        (["a b c d e f g h"], ["a b c d"]),  # longer than the reference: BP 1
        (["pleural"], ["pleural effusion is seen"]),  # one word: 2-4 grams have total 1, 0 hits
    ]
    for hyps, refs in cases:
        total = sum(text.bleu_stats(h, r) for h, r in zip(hyps, refs, strict=True))
        for n in (1, 4):
            assert text.corpus_bleu(total, n) == pytest.approx(
                nltk_corpus_bleu(hyps, refs, n), abs=1e-12), (hyps, refs, n)
    assert text.corpus_bleu(np.zeros(10), 4) == 0.0


def test_vectorised_corpus_bleu_equals_loop_and_resampled_nltk() -> None:
    hyps, refs = corpus(11, 20)
    stats = np.array([text.bleu_stats(h, r) for h, r in zip(hyps, refs, strict=True)])
    rng = np.random.default_rng(0)
    weights = rng.multinomial(len(hyps), np.full(len(hyps), 1 / len(hyps)), size=30)
    sums = weights @ stats
    for n in (1, 4):
        vector = text.corpus_bleu(sums, n)
        assert isinstance(vector, np.ndarray) and vector.shape == (30,)
        loop = [text.corpus_bleu(row, n) for row in sums]
        assert all(isinstance(x, float) for x in loop)
        np.testing.assert_allclose(vector, loop, rtol=0, atol=1e-15)
        for b in range(3):  # the weighted sum is the explicitly resampled corpus
            index = np.repeat(np.arange(len(hyps)), weights[b])
            assert vector[b] == pytest.approx(nltk_corpus_bleu(
                [hyps[i] for i in index], [refs[i] for i in index], n), abs=1e-12)


@pytest.mark.parametrize("n", [1, 4])
def test_sentence_bleu_is_nltk_smoothed(n: int) -> None:
    hyp, ref = "Small left pleural effusion.", "No left-sided pleural effusion is seen."
    expected = nltk_bleu.sentence_bleu(
        [text.tokenize(ref)], text.tokenize(hyp), weights=(1 / n,) * n,
        smoothing_function=nltk_bleu.SmoothingFunction().method1)
    assert text.sentence_bleu(hyp, ref, n) == expected
    assert 0 < expected < 1


def test_text_stats_per_report_values_match_the_libraries() -> None:
    hyps, refs = corpus(5, 40)
    hyps += ["", "Effusion.", "   ", "Normal chest."]
    refs += ["Normal chest.", "", "", "normal   CHEST"]
    fast = text.text_stats(hyps, refs)
    assert set(fast) == {"bleu_stats", "bleu1", "bleu4", "rouge_l"}
    assert fast["bleu_stats"].shape == (len(hyps), 10)
    for i, (h, r) in enumerate(zip(hyps, refs, strict=True)):
        np.testing.assert_array_equal(fast["bleu_stats"][i], text.bleu_stats(h, r))
        assert fast["rouge_l"][i] == text.rouge_l(h, r)
        assert fast["bleu1"][i] == pytest.approx(text.sentence_bleu(h, r, 1), abs=1e-12)
        assert fast["bleu4"][i] == pytest.approx(text.sentence_bleu(h, r, 4), abs=1e-12)
    # The empty ones score 0, the identical one 1.
    assert fast["rouge_l"][-4:-1].tolist() == [0.0, 0.0, 0.0]
    assert fast["bleu4"][-4:-1].tolist() == [0.0, 0.0, 0.0]
    assert fast["rouge_l"][-1] == 1.0 and fast["bleu1"][-1] == 1.0


def test_empty_texts_do_not_crash() -> None:
    for hyp, ref in [("", "No effusion."), ("No effusion.", ""), ("", ""), ("!!", "??")]:
        assert text.sentence_bleu(hyp, ref, 4) == 0.0
        assert text.sentence_bleu(hyp, ref, 1) == 0.0
        assert text.rouge_l(hyp, ref) == 0.0
        assert text.corpus_bleu(text.bleu_stats(hyp, ref), 4) == 0.0
    empty = text.text_stats([], [])
    assert empty["bleu_stats"].shape == (0, 10) and empty["rouge_l"].shape == (0,)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="pair up"):
        text.text_stats(["a"], [])
    with pytest.raises(ValueError, match="order"):
        text.corpus_bleu(np.ones(10), 5)
    with pytest.raises(ValueError, match="10 columns"):
        text.corpus_bleu(np.ones(8), 4)
