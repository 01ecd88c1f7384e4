"""Was the raters' blinding kept, and do a rater's answers on one report contradict each other?

Pure (pandas, NumPy, SciPy; no Django): everything takes the tidy ratings table of
``analysis.datasets.ratings`` (or a hand-made one with its columns) and returns
JSON-serialisable dicts (no NaN: None), with ``{"available": False, "reason": ...}`` where the
data cannot answer yet, like ``analysis.summary``.

* :func:`bang_index`: Bang's blinding index of one arm's guesses, with its standard error and
  Wald interval (Bang, Ni & Davis, Controlled Clinical Trials 2004;25:143-156).
* :func:`blinding_assessment`: the source-identification answers ("which report did the AI
  model write?") of every campaign as confusion matrices and Bang indices, with a verdict.
* :func:`consistency_flags`: the single-report ratings a rater gave one report that contradict
  each other (RADPEER complete agreement with a clinically significant error, ...), listed
  for the coordinator, never blocked.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd
from scipy import stats as sps

from analysis.jsonsafe import clean as _clean
from analysis.stats import StatsError, binomial_test, proportion_ci
from rating import instruments as inst

PROSPECTIVE, RETROSPECTIVE = "prospective", "retrospective"
AI_ASSISTED, SCP, AI_ALONE, PUBLISHED = "ai_assisted", "scp", "ai_alone", "published"
MODEL_PREFIX = "model:"

#: Bang et al. 2010 (and the R package ``BI``): an index within ±0.2 is commonly read as
#: successful blinding. Used only to qualify a "consistent with chance" verdict whose interval
#: still reaches beyond it.
RANDOM_GUESSING_BAND = 0.2
#: Below this many answers a verdict says the Wald interval is unreliable.
FEW_ANSWERS = 20

AI_INVOLVED_DEFINITION = (
    "AI-involved report: its text came from, or was written starting from, an AI model's "
    "output. ai_alone (the model's draft as it is) and model:<name> (a model's output) always; "
    "ai_assisted (a radiologist's report written from the AI draft) too, so in a prospective "
    "campaign the AI-assisted report and the ai_alone draft are the right answers to \"which "
    "report did the AI model write?\" and the SCP report is not. Never AI-involved: scp "
    "(standard care, no AI) and published (the case's published report). In a retrospective "
    "campaign an imported source with any other name is taken as model-written as well "
    "(rating.build asks source identification only on pairs of such a source with the "
    "published report, and the import reserves the arm names). Any other source in a "
    "prospective campaign is unknown and its pairs are skipped. A pair is scored only when "
    "exactly one of its two reports is AI-involved; the others are skipped and counted.")

NOTES = [
    AI_INVOLVED_DEFINITION,
    "Guess: the report the rater picked as the AI-written one. For the reports of source S a "
    "guess is correct when the rater called S the AI-written one if and only if S is "
    "AI-involved. An answer picks one report of a pair of which exactly one is AI-involved, so "
    "it is right (or wrong) for both reports at once: within one comparison the AI-involved "
    "source's index and the other source's index are the same number. 'per_source' pools a "
    "source over every comparison it is in.",
    "Bang's index BI = (correct - incorrect) / answers, from -1 (always wrong: opposite "
    "guessing) through 0 (random guessing, consistent with blinding) to 1 (always right: "
    "unblinded). Source identification is a forced choice, so there are no 'don't know' "
    "answers and BI = 2 x accuracy - 1.",
    "Blinding is in doubt when the lower limit of the index's two-sided Wald interval is above "
    "0 (the raters pick the AI-involved report more often than chance); an upper limit below 0 "
    "is opposite guessing (the raters tell the reports apart but attribute them the wrong "
    "way). Bang et al. read one-sided intervals; the two-sided interval used here, at the "
    "analysis plan's level (1 - alpha, 95% without a plan), is the more conservative: its "
    "limits are the one-sided bounds at 1 - alpha/2 (97.5% for 95%).",
    "Bang's variance treats the answers as independent. Each rater gives many answers and each "
    "case is answered by several raters, so when raters differ the interval is too narrow: "
    "see 'per_rater'.",
]


# --------------------------------------------------------------------------------------------
# JSON helpers (``clean`` is shared with analysis.summary through analysis.jsonsafe)
# --------------------------------------------------------------------------------------------

def _unavailable(reason: str, **extra: Any) -> dict[str, Any]:
    return {"available": False, "reason": reason, **extra}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        value is pd.NA)


def _float(value: Any) -> float | None:
    """A number, or None for anything missing or not a number."""
    if _missing(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Bang's blinding index
# --------------------------------------------------------------------------------------------

def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or _missing(value):
        raise StatsError(f"blinding index: {name} must be a whole number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StatsError(f"blinding index: {name} must be a whole number, got {value!r}") from None
    if not number.is_integer() or number < 0:
        raise StatsError(f"blinding index: {name} must be a whole number >= 0, got {value!r}")
    return int(number)


def bang_index(correct: int, incorrect: int, dont_know: int = 0,
               confidence: float = 0.95) -> dict[str, Any]:
    """Bang's blinding index of one arm, its standard error, Wald interval and reading.

    Bang, Ni & Davis (Controlled Clinical Trials 2004;25:143-156), for the respondents of one
    arm with n11 correct guesses, n21 incorrect and n31 "don't know"::

        BI = (2 * n11 / (n11 + n21) - 1) * (n11 + n21) / (n11 + n21 + n31)
           = (correct - incorrect) / n = p_c - p_i

    (the share of correct guesses beyond chance among all respondents). Its variance, from the
    multinomial (p_c, p_i, p_dk) of the n answers (Var p = p(1-p)/n, Cov(p_c, p_i) = -p_c p_i/n)::

        Var(BI) = [p_c (1 - p_c) + p_i (1 - p_i) + 2 p_c p_i] / n

    the variance the R package ``BI`` computes (Schwartz & Mercaldo, written with Dr Bang's
    help; the paper's text was not at hand here, its table 7 example is what the package's
    manual runs). It equals (1 - p_dk - BI^2) / n. The interval is BI ± z SE (Wald),
    truncated to the index's range [-1, 1]. Reading (Bang et al. 2004, 2010): near 0 random
    guessing, consistent with blinding; near 1 unblinded (correct guesses); near -1 opposite
    guessing. Blinding is "in doubt" when the lower limit is above 0, and opposite guessing is
    claimed when the upper limit is below 0.

    Every answer "don't know" gives BI 0 with SE 0 (no guess at all: the algebraic limit; the
    paper's first form is 0/0 there). When every guess is the same (SE 0) the Wald interval has
    no width and overstates the certainty; ``note`` says so.
    """
    c, i, d = (_count(correct, "correct"), _count(incorrect, "incorrect"),
               _count(dont_know, "dont_know"))
    n = c + i + d
    if n == 0:
        raise StatsError("blinding index: no answers (correct + incorrect + don't know = 0)")
    if not 0 < confidence < 1:
        raise StatsError(f"blinding index: confidence must be between 0 and 1, got {confidence}")
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    p_c, p_i = c / n, i / n
    bi = p_c - p_i
    variance = (p_c * (1 - p_c) + p_i * (1 - p_i) + 2 * p_c * p_i) / n
    se = math.sqrt(max(variance, 0.0))
    low, high = max(-1.0, bi - z * se), min(1.0, bi + z * se)
    in_doubt, opposite = low > 0, high < 0
    if c + i == 0:
        reading = "no guesses: every answer was 'don't know'"
    elif in_doubt:
        reading = "more correct guesses than chance: unblinded, blinding in doubt"
    elif opposite:
        reading = "more incorrect guesses than chance: opposite guessing"
    else:
        reading = "consistent with random guessing: consistent with blinding"
    result: dict[str, Any] = {
        "bi": bi, "se": se, "ci_low": low, "ci_high": high, "confidence": confidence,
        "n": n, "correct": c, "incorrect": i, "dont_know": d,
        "proportion_correct": p_c, "proportion_correct_of_guesses": c / (c + i) if c + i else None,
        "blinding_in_doubt": in_doubt, "opposite_guessing": opposite,
        "within_random_guessing_band": abs(bi) <= RANDOM_GUESSING_BAND,
        "interpretation": reading,
        "method": "Bang et al. 2004: BI = (correct - incorrect) / n, multinomial variance, "
                  "Wald interval truncated to [-1, 1]",
    }
    if se == 0:
        result["note"] = ("standard error 0 (every answer the same): the Wald interval has no "
                          "width and overstates the certainty")
    return result


# --------------------------------------------------------------------------------------------
# Blinding assessment from the source-identification answers
# --------------------------------------------------------------------------------------------

def ai_involved(source: Any, campaign_kind: Any) -> bool | None:
    """Whether a report of ``source`` is AI-involved (see ``AI_INVOLVED_DEFINITION``); None when
    the source is unknown for the campaign's kind."""
    if _missing(source):
        return None
    name = str(source)
    if name in (AI_ALONE, AI_ASSISTED) or name.startswith(MODEL_PREFIX):
        return True
    if name in (SCP, PUBLISHED):
        return False
    if campaign_kind == RETROSPECTIVE:
        return True  # an imported source other than the published report: a model's output
    return None


def source_label(source: str) -> str:
    """The source as a verdict names it ("the AI-assisted report")."""
    labels = {AI_ASSISTED: "AI-assisted report", SCP: "SCP report",
              AI_ALONE: "AI-alone draft", PUBLISHED: "published report"}
    if source in labels:
        return labels[source]
    if source.startswith(MODEL_PREFIX):
        return f"report of model {source[len(MODEL_PREFIX):]}"
    return f"{source} report"


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _comparison_verdict(ai: str, other: str, bang: dict[str, Any]) -> str:
    """One plain-English sentence on one comparison's index."""
    level = f"{bang['confidence'] * 100:g}% CI"
    numbers = (f"BI {_fmt(bang['bi'])}, {level} {_fmt(bang['ci_low'])} to "
               f"{_fmt(bang['ci_high'])}, {bang['n']} answers")
    if bang["blinding_in_doubt"]:
        text = (f"Raters identified the {source_label(ai)} more often than chance when it was "
                f"paired with the {source_label(other)} ({numbers}): the blinding of the "
                "preference and quality ratings is in doubt.")
    elif bang["opposite_guessing"]:
        text = (f"Raters picked the {source_label(other)} as the AI-written one more often than "
                f"chance when it was paired with the {source_label(ai)} ({numbers}): opposite "
                "guessing; the raters tell the reports apart but attribute them the wrong way, "
                "so their beliefs about the source may still colour the ratings.")
    else:
        text = (f"Raters' guesses between the {source_label(ai)} and the {source_label(other)} "
                f"were consistent with chance ({numbers}): consistent with blinding")
        if bang["ci_high"] > RANDOM_GUESSING_BAND:
            text += (", though the interval does not rule out substantial unblinding (upper "
                     f"limit above {RANDOM_GUESSING_BAND:g})")
        text += "."
    if bang["n"] < FEW_ANSWERS:
        text += f" Only {bang['n']} answers: too few for a reliable interval."
    return text


def picked_sources(rows: pd.DataFrame) -> pd.Series:
    """Pair instruments: the source of the report each rater picked, as text (the datasets'
    ``chosen_source``, where ``value`` is empty for an A/B answer; frames without that column,
    as simulations make them, carry it in ``value``)."""
    return _picks(rows).astype(str)


def _picks(rows: pd.DataFrame) -> pd.Series:
    return rows["chosen_source"] if "chosen_source" in rows else rows["value"]


def _scored_answers(group: pd.DataFrame, kind: Any) -> tuple[list[dict[str, Any]], Counter]:
    """Each answer of one campaign with its AI-involved source, or the reason it is skipped."""
    scored: list[dict[str, Any]] = []
    skipped: Counter = Counter()
    for source, other, pick, rater in zip(group["source"], group["other_source"],
                                          _picks(group), group["rater"], strict=True):
        if _missing(source) or _missing(other):
            skipped["not_a_pair"] += 1
            continue
        first, second = ai_involved(source, kind), ai_involved(other, kind)
        if first is None or second is None:
            skipped["unknown_source"] += 1
            continue
        if first and second:
            skipped["both_ai_involved"] += 1
            continue
        if not first and not second:
            skipped["neither_ai_involved"] += 1
            continue
        ai, human = (str(source), str(other)) if first else (str(other), str(source))
        if _missing(pick) or str(pick) not in (ai, human):
            skipped["answer_not_resolved_to_a_source"] += 1
            continue
        scored.append({"ai": ai, "other": human, "rater": rater, "correct": str(pick) == ai})
    return scored, skipped


def _tally(answers: Iterable[dict[str, Any]]) -> tuple[int, int]:
    results = [a["correct"] for a in answers]
    return sum(results), len(results) - sum(results)


def _campaign_blinding(group: pd.DataFrame, campaign: Any, kind: Any,
                       confidence: float) -> dict[str, Any]:
    base = {"campaign": campaign, "campaign_kind": kind, "n_answers": len(group)}
    if not len(group):
        reason = "no source-identification answers in this campaign"
        return _unavailable(reason, **base, verdict=f"Blinding could not be assessed: {reason}.")
    scored, skipped = _scored_answers(group, kind)
    base.update({"n_scored": len(scored), "skipped": dict(sorted(skipped.items()))})
    if not scored:
        detail = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(skipped.items()))
        reason = f"no answer on a pair with exactly one AI-involved report ({detail})"
        return _unavailable(reason, **base, verdict=f"Blinding could not be assessed: {reason}.")
    comparisons: dict[str, Any] = {}
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for answer in scored:
        by_pair[(answer["ai"], answer["other"])].append(answer)
    verdicts = []
    for (ai, other), answers in sorted(by_pair.items()):
        c, w = _tally(answers)
        bang = bang_index(c, w, confidence=confidence)
        per_rater: dict[str, Any] = defaultdict(list)
        for answer in answers:
            per_rater[str(answer["rater"])].append(answer)
        comparisons[f"{ai} vs {other}"] = {
            "ai_involved_source": ai, "other_source": other,
            "labels": [ai, other],
            # Over reports: each answer classifies both reports of its pair.
            "matrix": [[c, w], [w, c]],
            "matrix_orientation": "rows: actual source; columns: the source the rater's "
                                  "answer implies (over reports, two per answer)",
            "n_answers": c + w, "correct": c, "incorrect": w,
            "accuracy": {"available": True,
                         **proportion_ci(c, c + w, confidence=confidence).as_dict()},
            "p_vs_chance": binomial_test(c, c + w),
            "bang": bang,
            "per_rater": {r: bang_index(*_tally(a), confidence=confidence)
                          for r, a in sorted(per_rater.items())},
        }
        verdicts.append(_comparison_verdict(ai, other, bang))
    per_source: dict[str, Any] = {}
    for source in sorted({a["ai"] for a in scored} | {a["other"] for a in scored}):
        mine = [a for a in scored if source in (a["ai"], a["other"])]
        per_source[source] = {"ai_involved": any(a["ai"] == source for a in mine),
                              **bang_index(*_tally(mine), confidence=confidence)}
    pooled = bang_index(*_tally(scored), confidence=confidence)
    return {
        "available": True, **base,
        "comparisons": comparisons,
        "per_source": per_source,
        "pooled": pooled,
        "blinding_in_doubt": any(c["bang"]["blinding_in_doubt"] for c in comparisons.values()),
        "opposite_guessing": any(c["bang"]["opposite_guessing"] for c in comparisons.values()),
        "verdict": " ".join(verdicts),
    }


def blinding_assessment(ratings: pd.DataFrame, *, confidence: float = 0.95) -> dict[str, Any]:
    """Per campaign: could the raters tell which report the AI was involved in?

    Why: preference and quality are rated blind to the source; if raters recognise the
    AI-involved report (by style), those ratings may carry their opinion of AI. The
    source-identification answers measure that. For every campaign of the table: the answers
    per comparison (AI-involved source vs the other) as a confusion matrix over reports, the
    accuracy (Wilson) with its exact binomial P against 1/2, Bang's index (overall and per
    rater), the index per source pooled over comparisons, and a plain-English ``verdict``.
    The definitions are in ``notes`` (``AI_INVOLVED_DEFINITION``).
    """
    notes = list(NOTES)
    if ratings is None or not len(ratings):
        return _clean(_unavailable("no ratings yet", notes=notes, campaigns={}))
    answers = ratings[ratings["instrument"] == inst.SOURCE_ID]
    campaigns: dict[str, Any] = {}
    keys = ratings[["campaign", "campaign_kind"]].drop_duplicates()
    for campaign, kind in sorted(zip(keys["campaign"], keys["campaign_kind"], strict=True),
                                 key=lambda ck: (str(ck[0]), str(ck[1]))):
        group = answers[(answers["campaign"] == campaign)
                        & (answers["campaign_kind"] == kind)]
        key = str(campaign)
        if key in campaigns:  # one campaign under two kinds: keep both, apart
            key = f"{campaign} ({kind})"
        campaigns[key] = _campaign_blinding(group, campaign, kind, confidence)
    if not any(entry["available"] for entry in campaigns.values()):
        reason = ("no source-identification answers yet" if not len(answers) else
                  "no source-identification answer on a pair with exactly one AI-involved "
                  "report")
        return _clean(_unavailable(reason, notes=notes, campaigns=campaigns))
    return _clean({"available": True, "notes": notes, "campaigns": campaigns})


# --------------------------------------------------------------------------------------------
# Consistency flags
# --------------------------------------------------------------------------------------------

RULES: dict[str, str] = {
    "radpeer_agreement_with_significant_errors":
        "RADPEER complete agreement (1-5 variant: 5; ACR 2016: 1 'concur') with one or more "
        "clinically significant errors counted on the same report.",
    "likert_5_with_significant_errors":
        "Likert 5 ('flawless ... diagnosis matches the gold standard') with one or more "
        "clinically significant errors.",
    "acceptable_as_is_with_significant_errors":
        "Acceptability A ('accept as is') with one or more clinically significant errors: a "
        "report with a clinically significant error cannot be signed unchanged.",
    "radpeer_complete_agreement_with_minor_errors":
        "RADPEER 5 of the 1-5 variant ('complete agreement with the reference report') with "
        "clinically insignificant errors counted (and no significant one): that variant has "
        "4 for an insignificant miss.",
    "radpeer_significant_discrepancy_without_significant_errors":
        "RADPEER says clinically significant (1-5 variant: 1 or 3; ACR 2016: 2b or 3b) while "
        "the error counts of the same report have no clinically significant error.",
    "likert_acceptability_contradiction":
        "Likert 5 ('flawless') with acceptability C or D (major revision, unacceptable), or "
        "Likert 1 ('unreadable or medically dangerous errors') with acceptability A "
        "('accept as is').",
}

_ACR_ONLY = {"2a", "2b", "3a", "3b"}
_REFERENCE_ONLY = {"2", "3", "4", "5"}
_SIGNIFICANT_RADPEER = {inst.RADPEER_REFERENCE: {"1", "3"}, inst.RADPEER_ACR2016: {"2b", "3b"}}
_AGREEMENT_RADPEER = {inst.RADPEER_REFERENCE: "5", inst.RADPEER_ACR2016: "1"}
_ERROR_INSTRUMENT = re.compile(r"errors\.(?P<type>[^.]+)\.(?P<significance>[^.]+)")
_SINGLE = (inst.LIKERT, inst.RADPEER, inst.ACCEPTABILITY)


def _code(value: Any) -> str | None:
    """An answer as its level code: "5", "2a", "A" ("5.0" and 5 become "5")."""
    if _missing(value):
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0*", text):
        text = text.split(".")[0]
    return text


def radpeer_variants(ratings: pd.DataFrame,
                     acr_campaigns: Iterable[Any] = ()) -> dict[Any, str | None]:
    """Each campaign's RADPEER variant, read from its answers (the table has no variant column).

    ``acr_campaigns`` are ACR RADPEER 2016 campaigns; otherwise a campaign with any 2a/2b/3a/3b
    answer is ACR, one with any 2-5 answer is the 1-5 variant, and one whose only answers are
    "1" is ``None`` (unknown: "1" is the best level of ACR and the worst of the 1-5 variant).
    Campaigns without RADPEER answers are left out.
    """
    acr = set(acr_campaigns)
    rows = ratings[ratings["instrument"] == inst.RADPEER]
    out: dict[Any, str | None] = {}
    for campaign, group in rows.groupby("campaign", sort=True):
        codes = {_code(a if not _missing(a) else v)
                 for a, v in zip(group["answer"], group["value"], strict=True)}
        if campaign in acr or codes & _ACR_ONLY:
            out[campaign] = inst.RADPEER_ACR2016
        elif codes & _REFERENCE_ONLY:
            out[campaign] = inst.RADPEER_REFERENCE
        else:
            out[campaign] = None
    return out


def _item_flags(values: dict[str, Any], errors: dict[str, dict[str, float]],
                variant: str | None) -> list[tuple[str, str]]:
    """The (rule, details) contradictions of one rater's answers on one report."""
    flags: list[tuple[str, str]] = []
    significant = {t: int(n) for t, n in errors.get("significant", {}).items() if n > 0}
    minor = {t: int(n) for t, n in errors.get("insignificant", {}).items() if n > 0}
    n_sig, n_minor = sum(significant.values()), sum(minor.values())
    errors_answered = bool(errors)
    sig_text = ", ".join(f"{t} {n}" for t, n in sorted(significant.items()))
    likert = _float(values.get(inst.LIKERT))
    radpeer = _code(values.get(inst.RADPEER))
    acceptability = _code(values.get(inst.ACCEPTABILITY))
    acceptability = acceptability.upper() if acceptability else None

    if radpeer is not None and variant is not None:
        agreement = _AGREEMENT_RADPEER[variant]
        label = "1-5" if variant == inst.RADPEER_REFERENCE else "ACR 2016"
        meaning = "complete agreement" if variant == inst.RADPEER_REFERENCE else "concur"
        if radpeer == agreement and n_sig:
            flags.append(("radpeer_agreement_with_significant_errors",
                          f"RADPEER ({label}) {radpeer} ({meaning}) with {n_sig} "
                          f"clinically significant error(s): {sig_text}"))
        if (variant == inst.RADPEER_REFERENCE and radpeer == agreement and not n_sig
                and n_minor):
            minor_text = ", ".join(f"{t} {n}" for t, n in sorted(minor.items()))
            flags.append(("radpeer_complete_agreement_with_minor_errors",
                          f"RADPEER (1-5) 5 (complete agreement) with {n_minor} clinically "
                          f"insignificant error(s): {minor_text}"))
        if radpeer in _SIGNIFICANT_RADPEER[variant] and errors_answered and not n_sig:
            flags.append(("radpeer_significant_discrepancy_without_significant_errors",
                          f"RADPEER ({label}) {radpeer} (clinically significant) but no "
                          "clinically significant error counted"))
    if likert == 5 and n_sig:
        flags.append(("likert_5_with_significant_errors",
                      f"Likert 5 with {n_sig} clinically significant error(s): {sig_text}"))
    if acceptability == "A" and n_sig:
        flags.append(("acceptable_as_is_with_significant_errors",
                      f"acceptability A (accept as is) with {n_sig} clinically significant "
                      f"error(s): {sig_text}"))
    if (likert == 5 and acceptability in ("C", "D")) or (likert == 1 and acceptability == "A"):
        flags.append(("likert_acceptability_contradiction",
                      f"Likert {likert:g} with acceptability {acceptability}"))
    return flags


def consistency_flags(ratings: pd.DataFrame, *,
                      acr_campaigns: Iterable[Any] = ()) -> dict[str, Any]:
    """The answers one rater gave one report that contradict each other: listed, not blocked.

    Why: a rater who marks a report "complete agreement" and also counts a clinically
    significant error has mis-clicked one of them (or misread a scale); the coordinator asks,
    the analysis is not changed silently. Rules (``RULES``), per rater and rated report
    (campaign, item_code, rater); errors are the rows ``errors.<type>.<significance>`` with the
    count in ``value``:

    * RADPEER complete agreement (1-5 variant: 5; ACR 2016: "1") with any significant error;
    * Likert 5 with any significant error (5 says "diagnosis matches the gold standard");
    * acceptability A ("accept as is") with any significant error: such a report cannot be
      signed unchanged;
    * RADPEER 5 of the 1-5 variant with only insignificant errors: that variant keeps 4 for an
      insignificant miss, so "complete agreement" excludes any counted error (not applied to
      ACR "1", "concur with the interpretation", which a wording-level slip need not break);
    * RADPEER clinically significant (1-5: 1 or 3; ACR: 2b or 3b) while the error counts of the
      report (when answered) hold no significant error: the reverse contradiction;
    * Likert 5 ("flawless") with acceptability C/D, or Likert 1 ("unreadable or medically
      dangerous") with acceptability A.

    Not flagged: Likert 1 without errors (a report can be unreadable without a countable
    error), Likert 2-4 with errors (those levels allow errors). The RADPEER variant comes from
    ``acr_campaigns`` or the campaign's answers (:func:`radpeer_variants`); a campaign whose
    only RADPEER answers are "1" cannot be placed, so its RADPEER rules are not applied (said
    in ``notes``).

    Returns ``flags`` (campaign, item_code, rater, case, source, arm, rule, details), ``counts``
    (per rule, per rater with flags, items flagged and items checked) and ``rules``.
    """
    empty_counts = {"flags": 0, "items_checked": 0, "items_flagged": 0,
                    "per_rule": dict.fromkeys(RULES, 0), "per_rater": {}}
    if ratings is None or not len(ratings):
        return _clean(_unavailable("no ratings yet", rules=RULES, flags=[],
                                   counts=empty_counts, notes=[]))
    instrument = ratings["instrument"].astype(str)
    is_error = instrument.str.match(_ERROR_INSTRUMENT.pattern)
    rows = ratings[instrument.isin(_SINGLE) | is_error]
    if not len(rows):
        return _clean(_unavailable(
            "no single-report ratings (likert, radpeer, acceptability, errors) yet",
            rules=RULES, flags=[], counts=empty_counts, notes=[]))
    variants = radpeer_variants(ratings, acr_campaigns)
    notes = []
    unknown = sorted((c for c, v in variants.items() if v is None), key=str)
    if unknown:
        notes.append(f"campaign(s) {unknown}: every RADPEER answer is '1', which is the best "
                     "level of ACR RADPEER 2016 and the worst of the 1-5 variant; the RADPEER "
                     "rules were not applied there (pass acr_campaigns to place them)")
    flags: list[dict[str, Any]] = []
    checked: Counter = Counter()
    flagged_items: Counter = Counter()
    # One pass over the rows in plain Python (a pandas group per rated report made this the
    # slowest part of the whole analysis: about 90% of it at 300 cases).
    items: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    columns = ("campaign", "item_code", "rater", "instrument", "answer", "value", "case",
               "source", "arm")
    for (campaign, item_code, rater, name, answer, value, case, source,
         arm) in zip(*(rows[c].tolist() for c in columns), strict=True):
        key = tuple(None if _missing(k) else k for k in (campaign, item_code, rater))
        item = items.get(key)
        if item is None:
            item = items[key] = {"values": {}, "errors": {}, "first": (case, source, arm)}
        name = str(name)
        match = _ERROR_INSTRUMENT.fullmatch(name)
        if match:
            count = _float(value if not _missing(value) else answer)
            item["errors"].setdefault(match["significance"], {})[match["type"]] = count or 0.0
        else:
            item["values"][name] = (value if name == inst.LIKERT and not _missing(value)
                                    else answer if not _missing(answer) else value)
    try:
        ordered = sorted(items)
    except TypeError:  # mixed key types: a stable order all the same
        ordered = sorted(items, key=lambda k: tuple(str(v) for v in k))
    for campaign, item_code, rater in ordered:
        item = items[(campaign, item_code, rater)]
        checked[rater] += 1
        found = _item_flags(item["values"], item["errors"], variants.get(campaign))
        if found:
            flagged_items[rater] += 1
        case, source, arm = item["first"]
        for rule, details in found:
            flags.append({"campaign": campaign, "item_code": item_code, "rater": rater,
                          "case": case, "source": source, "arm": arm, "rule": rule,
                          "details": details})
    per_rule = Counter(flag["rule"] for flag in flags)
    per_rater_flags = Counter(flag["rater"] for flag in flags)
    counts = {
        "flags": len(flags),
        "items_checked": sum(checked.values()),
        "items_flagged": sum(flagged_items.values()),
        "per_rule": {rule: per_rule.get(rule, 0) for rule in RULES},
        "per_rater": {str(r): {"flags": per_rater_flags.get(r, 0),
                               "items_flagged": flagged_items.get(r, 0),
                               "items_checked": n}
                      for r, n in sorted(checked.items(), key=lambda kv: str(kv[0]))},
    }
    return _clean({"available": True, "rules": RULES, "flags": flags, "counts": counts,
                   "notes": notes})
