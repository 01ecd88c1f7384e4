"""BLEU and ROUGE-L of generated reports against reference reports, from the standard libraries.

BLEU comes from NLTK (``nltk.translate.bleu_score``) and ROUGE-L from Google's ``rouge-score``,
so the numbers are the ones other papers report, not a re-implementation's. Both see the same
words: rouge-score's tokenizer (lower-case, split on anything that is not a letter or digit).

Corpus BLEU is not an average of per-report BLEU: it pools clipped n-gram matches and lengths
over the corpus (Papineni et al. 2002). :func:`bleu_stats` therefore keeps, per report, the
ten numbers NLTK's ``corpus_bleu`` sums; corpus BLEU of any subset or bootstrap resample is
:func:`corpus_bleu` of their (weighted) sum, without re-reading any text. Corpus ROUGE-L is
the mean of the per-report F-measures (rouge-score has no corpus-level pooling).

:func:`bleu_stats`, :func:`sentence_bleu`, :func:`rouge_l` and :func:`text_stats` call the
libraries for every count and LCS (about 1.5 ms per report pair: rouge-score's LCS table is
pure Python); only the aggregation of NLTK's counts (corpus and smoothed per-report BLEU, for
bootstrap resamples) is a formula here, checked against NLTK's own functions.

No Django here: plain strings in, NumPy arrays out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, modified_precision
from nltk.translate.bleu_score import closest_ref_length as _closest_ref_length
from nltk.translate.bleu_score import sentence_bleu as _nltk_sentence_bleu
from rouge_score import rouge_scorer
from rouge_score import tokenize as _rouge_tokenize

__all__ = [
    "MAX_ORDER", "SMOOTHING", "STAT_NAMES", "TOKENISATION", "bleu_stats", "bleu_stats_tokens",
    "corpus_bleu", "rouge_l", "sentence_bleu", "text_stats",
    "tokenize",
]

#: Shown in reports next to the numbers, so a reader knows what was compared.
TOKENISATION = (
    "lower-cased, split on every character that is not a letter or digit (rouge-score's "
    "tokenizer, no stemming), so BLEU and ROUGE-L see the same words"
)
SMOOTHING = (
    "corpus BLEU: none (Papineni et al. 2002, NLTK corpus_bleu); per-report BLEU: NLTK "
    "smoothing method 1 (Chen & Cherry 2014, epsilon 0.1)"
)

#: Highest n-gram order kept in :func:`bleu_stats` (BLEU-4 is the reported one).
MAX_ORDER = 4
#: Column names of a :func:`bleu_stats` row.
STAT_NAMES = ("m1", "m2", "m3", "m4", "t1", "t2", "t3", "t4", "hyp_len", "ref_len")

# One scorer for the process: building it is not free and it holds no per-call state.
_SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
_SMOOTHING = SmoothingFunction()  # epsilon 0.1, method1 below
_EPSILON = _SMOOTHING.epsilon


def tokenize(text: str) -> list[str]:
    """rouge-score's tokens of ``text``: BLEU uses these too, so both metrics count one thing."""
    return _rouge_tokenize.tokenize(text or "", None)


def bleu_stats_tokens(
    hypothesis: Sequence[str], references: Sequence[Sequence[str]]
) -> np.ndarray:
    """The ten BLEU sufficient statistics of one tokenised hypothesis (see :func:`bleu_stats`).

    Several references are allowed (NLTK's clipping against the maximum count, and the closest
    reference length); the platform has one per report, NLTK's own examples have more.
    """
    out = np.empty(10, dtype=float)
    for i in range(MAX_ORDER):
        # NLTK's unnormalised Fraction: numerator = clipped matches, denominator = max(1, total).
        p = modified_precision(references, hypothesis, i + 1)
        out[i] = p.numerator
        out[MAX_ORDER + i] = p.denominator
    out[8] = len(hypothesis)
    out[9] = _closest_ref_length(references, len(hypothesis))
    return out


def bleu_stats(hypothesis: str, reference: str) -> np.ndarray:
    """Per-report ``[m1..m4, t1..t4, hyp_len, ref_len]``: what NLTK's corpus BLEU sums.

    m_n are clipped n-gram matches and t_n the hypothesis's n-gram count (at least 1, as NLTK);
    summing rows over any set of reports gives that set's corpus BLEU via :func:`corpus_bleu`.
    """
    return bleu_stats_tokens(tokenize(hypothesis), [tokenize(reference)])


def _brevity_penalty(hyp_len: np.ndarray, ref_len: np.ndarray) -> np.ndarray:
    """NLTK's brevity penalty: 1 if longer than the reference, 0 if empty, else exp(1 - r/c)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        short = np.exp(1.0 - ref_len / hyp_len)
    return np.where(hyp_len > ref_len, 1.0, np.where(hyp_len == 0, 0.0, short))


def _bleu(stats: np.ndarray, n: int, *, smoothed: bool) -> np.ndarray:
    """BLEU-n with uniform weights over the last axis of ``stats``; see the public wrappers."""
    if n not in range(1, MAX_ORDER + 1):
        raise ValueError(f"BLEU order must be 1..{MAX_ORDER}, not {n}")
    stats = np.asarray(stats, dtype=float)
    if stats.shape[-1] != 10:
        raise ValueError(f"BLEU statistics have 10 columns, not {stats.shape[-1]}")
    matches = stats[..., :n]
    totals = stats[..., MAX_ORDER:MAX_ORDER + n]
    with np.errstate(divide="ignore", invalid="ignore"):
        if smoothed:  # NLTK method1: a zero match count becomes epsilon / total
            precision = np.where(matches > 0, matches, _EPSILON) / totals
        else:
            precision = matches / totals
        # Unsmoothed, any zero precision makes BLEU 0 (NLTK: a 1e-308 stand-in, ~1e-77 at n=4).
        usable = np.all(precision > 0, axis=-1) & (matches[..., 0] > 0)
        log_mean = np.sum(np.log(np.where(usable[..., None], precision, 1.0)), axis=-1) / n
    bleu = _brevity_penalty(stats[..., 8], stats[..., 9]) * np.exp(log_mean)
    return np.where(usable, bleu, 0.0)


def corpus_bleu(stats_sum: np.ndarray, n: int) -> float | np.ndarray:
    """Corpus BLEU-n (uniform weights 1/n, no smoothing) from summed :func:`bleu_stats` rows.

    ``stats_sum`` is one sum (shape (10,)) -> float, or one per bootstrap resample (shape
    (B, 10)) -> shape (B,). Equals NLTK's ``corpus_bleu`` on the same reports; where NLTK
    returns a denormal stand-in (~1e-77) for a zero higher-order match count this returns 0.
    """
    value = _bleu(stats_sum, n, smoothed=False)
    return float(value) if value.ndim == 0 else value


def sentence_bleu(hypothesis: str, reference: str, n: int) -> float:
    """One report's BLEU-n from NLTK with smoothing method 1 (else most reports would score 0)."""
    if n not in range(1, MAX_ORDER + 1):
        raise ValueError(f"BLEU order must be 1..{MAX_ORDER}, not {n}")
    return float(_nltk_sentence_bleu(
        [tokenize(reference)], tokenize(hypothesis), weights=(1.0 / n,) * n,
        smoothing_function=_SMOOTHING.method1,
    ))


def rouge_l(hypothesis: str, reference: str) -> float:
    """One report's ROUGE-L F-measure from rouge-score (reference is its "target").

    A corpus's ROUGE-L is the mean of these per-report values.
    """
    return float(_SCORER.score(reference or "", hypothesis or "")["rougeL"].fmeasure)


def text_stats(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """Everything the text metrics need, per report: the libraries' numbers.

    ``bleu_stats`` (n, 10) for corpus BLEU of any subset or resample (NLTK's counts);
    ``bleu1`` and ``bleu4`` (n,) per-report smoothed BLEU (as :func:`sentence_bleu`);
    ``rouge_l`` (n,) per-report ROUGE-L F-measure from rouge-score. A pair that recurs
    (identical normal reports are common) is scored once.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: they pair up")
    n = len(hypotheses)
    stats = np.empty((n, 10), dtype=float)
    rouge = np.empty(n, dtype=float)
    seen: dict[tuple[str, str], tuple[np.ndarray, float]] = {}
    for i, pair in enumerate(zip(hypotheses, references, strict=True)):
        found = seen.get(pair)
        if found is None:
            found = seen[pair] = (bleu_stats(*pair), rouge_l(*pair))
        stats[i], rouge[i] = found
    return {
        "bleu_stats": stats,
        "bleu1": _bleu(stats, 1, smoothed=True),
        "bleu4": _bleu(stats, 4, smoothed=True),
        "rouge_l": rouge,
    }
