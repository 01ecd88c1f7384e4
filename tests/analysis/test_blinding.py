"""``analysis.blinding`` against independent computations and hand-made tables.

Bang's index is checked against a hand calculation, the paper's own form of the index, the
R package ``BI`` (its Bang loop transcribed here from the 3 x 2 guess-by-arm table, on the
CRISP table of Bang et al. 2004 that its manual uses), the multinomial delta-method variance
computed with NumPy, and the exact variance of the estimator by enumerating every outcome of a
small multinomial. The assessment and the consistency flags run on small tables with the
ratings table's columns (``analysis.datasets.ratings``), built here without a database.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.blinding import (
    RULES,
    ai_involved,
    bang_index,
    blinding_assessment,
    consistency_flags,
    radpeer_variants,
)
from analysis.stats import StatsError

TOL = 1e-9
Z95 = 1.959963984540054
COLUMNS = [
    "trial", "campaign", "campaign_kind", "item_code", "case", "site", "item_kind", "source",
    "other_source", "arm", "reader", "rater", "instrument", "answer", "value", "seconds",
]


def as_json(result: dict) -> dict:
    """The result survives strict JSON (no NaN, no NumPy types) unchanged."""
    return json.loads(json.dumps(result, allow_nan=False))


# --------------------------------------------------------------------------------------------
# bang_index
# --------------------------------------------------------------------------------------------

def test_hand_calculation() -> None:
    # 30 correct, 10 incorrect of 40: BI = 20/40 = 0.5; p_c = .75, p_i = .25;
    # Var = (.75*.25 + .25*.75 + 2*.75*.25)/40 = .75/40 = .01875; SE = .136931
    r = bang_index(30, 10)
    assert r["bi"] == pytest.approx(0.5, abs=TOL)
    assert r["se"] == pytest.approx(math.sqrt(0.01875), abs=TOL)
    assert r["se"] == pytest.approx(0.1369306, abs=1e-7)
    assert r["ci_low"] == pytest.approx(0.5 - Z95 * math.sqrt(0.01875), abs=TOL)
    assert r["ci_high"] == pytest.approx(0.5 + Z95 * math.sqrt(0.01875), abs=TOL)
    assert (r["n"], r["correct"], r["incorrect"], r["dont_know"]) == (40, 30, 10, 0)
    assert r["blinding_in_doubt"] and not r["opposite_guessing"]
    assert r["proportion_correct"] == 0.75
    as_json(r)


@pytest.mark.parametrize(("c", "i", "d"), [(30, 10, 0), (82, 25, 170), (29, 27, 83),
                                           (3, 9, 4), (1, 0, 7), (12, 12, 1)])
def test_paper_form_and_multinomial_variance(c: int, i: int, d: int) -> None:
    r = bang_index(c, i, d)
    n = c + i + d
    # The paper's form: (2 * n11 / (n11 + n21) - 1) * (n11 + n21) / (n11 + n21 + n31).
    paper = (2 * (c / (c + i)) - 1) * ((c + i) / (c + i + d))
    assert r["bi"] == pytest.approx(paper, abs=TOL)
    # Delta method on the multinomial: Cov(p) = (diag(p) - p p') / n, gradient (1, -1, 0).
    p = np.array([c, i, d], dtype=float) / n
    cov = (np.diag(p) - np.outer(p, p)) / n
    g = np.array([1.0, -1.0, 0.0])
    assert r["se"] ** 2 == pytest.approx(float(g @ cov @ g), abs=TOL)
    # ... which is also (1 - p_dk - BI^2) / n.
    assert r["se"] ** 2 == pytest.approx((1 - p[2] - r["bi"] ** 2) / n, abs=TOL)


def test_variance_formula_is_the_exact_variance_of_the_estimator() -> None:
    """At the true probabilities the formula is the exact variance of (C - I)/n: every outcome
    of a small multinomial enumerated (no simulation)."""
    n, probs = 7, (0.5, 0.3, 0.2)
    mean = second = 0.0
    for c, i in itertools.product(range(n + 1), repeat=2):
        if c + i > n:
            continue
        weight = sps.multinomial.pmf([c, i, n - c - i], n, probs)
        mean += weight * (c - i) / n
        second += weight * ((c - i) / n) ** 2
    p_c, p_i, _ = probs
    assert mean == pytest.approx(p_c - p_i, abs=1e-12)
    formula = (p_c * (1 - p_c) + p_i * (1 - p_i) + 2 * p_c * p_i) / n
    assert second - mean**2 == pytest.approx(formula, abs=1e-12)


def r_package_bang(x: np.ndarray, conf_level: float = 0.95) -> list[tuple[float, ...]]:
    """The Bang part of R's ``BI::BI`` (version 1.2.0), on its 3 x 2 table: rows the guesses
    (treatment, placebo, don't know), columns the actual arms; ``x2 <- addmargins(t(x))``."""
    x2 = np.asarray(x, dtype=float).T
    x2 = np.column_stack([x2, x2.sum(axis=1)])
    z = sps.norm.ppf(1 - (1 - conf_level) / 2)
    out = []
    for i in range(2):
        est = (2 * (x2[i, i] / (x2[i, 0] + x2[i, 1])) - 1) * (
            (x2[i, 0] + x2[i, 1]) / (x2[i, 0] + x2[i, 1] + x2[i, 2]))
        tot = x2[i, 3]
        se = math.sqrt(((x2[i, 0] / tot) * (1 - x2[i, 0] / tot)
                        + (x2[i, 1] / tot) * (1 - x2[i, 1] / tot)
                        + 2 * (x2[i, 0] / tot) * (x2[i, 1] / tot)) / tot)
        out.append((est, se, est - z * se, est + z * se))
    return out


# CRISP (Bang et al. 2004, table 7), as in the R package's example: guesses x actual arm.
CRISP = np.array([[82, 27], [25, 29], [170, 83]])


@pytest.mark.parametrize("confidence", [0.95, 0.90])
def test_against_the_r_package_on_crisp(confidence: float) -> None:
    reference = r_package_bang(CRISP, confidence)
    treatment = bang_index(82, 25, 170, confidence=confidence)  # guessed T, P, DK in arm T
    placebo = bang_index(29, 27, 83, confidence=confidence)  # guessed P (correct), T, DK
    for mine, theirs in ((treatment, reference[0]), (placebo, reference[1])):
        assert (mine["bi"], mine["se"], mine["ci_low"], mine["ci_high"]) == pytest.approx(
            theirs, abs=TOL)


def test_crisp_hand_values() -> None:
    # Treatment: (82 - 25)/277 = 0.205776; Var = (.296029*.703971 + .090253*.909747
    # + 2*.296029*.090253)/277 -> SE 0.035237. Placebo: (29 - 27)/139 = 0.014388, SE 0.053823.
    # The one-sided 95% limits Bang reads are the two-sided 90% interval: 0.1478 to 0.2637.
    treatment, placebo = bang_index(82, 25, 170), bang_index(29, 27, 83)
    assert treatment["bi"] == pytest.approx(0.205776, abs=1e-6)
    assert treatment["se"] == pytest.approx(0.035237, abs=1e-6)
    assert placebo["bi"] == pytest.approx(0.014388, abs=1e-6)
    assert placebo["se"] == pytest.approx(0.053823, abs=1e-6)
    ninety = bang_index(82, 25, 170, confidence=0.90)
    assert (ninety["ci_low"], ninety["ci_high"]) == pytest.approx((0.1478, 0.2637), abs=1e-4)
    assert treatment["blinding_in_doubt"] and not placebo["blinding_in_doubt"]
    assert "consistent with blinding" in placebo["interpretation"]


def test_readings_and_edges() -> None:
    opposite = bang_index(5, 35)
    assert opposite["bi"] == pytest.approx(-0.75)
    assert opposite["opposite_guessing"] and not opposite["blinding_in_doubt"]
    assert "opposite guessing" in opposite["interpretation"]
    chance = bang_index(21, 19)
    assert not chance["blinding_in_doubt"] and not chance["opposite_guessing"]
    assert chance["within_random_guessing_band"]

    perfect = bang_index(8, 0)  # every guess right: SE 0, a degenerate interval
    assert (perfect["bi"], perfect["se"], perfect["ci_low"], perfect["ci_high"]) == (1, 0, 1, 1)
    assert "note" in perfect and perfect["blinding_in_doubt"]

    near = bang_index(19, 1)  # 0.9 + 1.96 * 0.0975 > 1: truncated to the index's range
    assert near["ci_high"] == 1.0
    assert near["ci_low"] == pytest.approx(0.9 - Z95 * math.sqrt((1 - 0.81) / 20), abs=TOL)

    unsure = bang_index(0, 0, 12)
    assert (unsure["bi"], unsure["se"]) == (0, 0)
    assert unsure["proportion_correct_of_guesses"] is None
    assert "don't know" in unsure["interpretation"]
    as_json(unsure)


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((0, 0, 0), {}, "no answers"),
    ((-1, 2), {}, ">= 0"),
    ((1.5, 2), {}, "whole number"),
    ((True, 2), {}, "whole number"),
    ((None, 2), {}, "whole number"),
    ((3, 2), {"confidence": 1.0}, "confidence"),
])
def test_invalid_input_raises(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(StatsError, match=message):
        bang_index(*args, **kwargs)


def test_numpy_counts_accepted() -> None:
    assert bang_index(np.int64(3), np.int64(1))["bi"] == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# blinding_assessment
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "kind", "expected"), [
    ("ai_assisted", "prospective", True), ("ai_alone", "prospective", True),
    ("scp", "prospective", False), ("model:gpt", "prospective", True),
    ("model:gpt", "retrospective", True), ("published", "retrospective", False),
    ("radgpt", "retrospective", True), ("radgpt", "prospective", None),
    (None, "prospective", None),
])
def test_ai_involved(source: str | None, kind: str, expected: bool | None) -> None:
    assert ai_involved(source, kind) is expected


def row(**fields) -> dict:
    base = dict.fromkeys(COLUMNS)
    base.update({"trial": "t", "site": "A", "seconds": 5.0})
    base.update(fields)
    return base


def source_id_rows(campaign: int, kind: str, first: str, second: str, picks: list[str],
                   raters: tuple[str, ...] = ("r1", "r2")) -> list[dict]:
    """One answer per pick; the report/other order alternates, as the datasets may give it."""
    rows = []
    for k, pick in enumerate(picks):
        source, other = (first, second) if k % 2 == 0 else (second, first)
        rows.append(row(campaign=campaign, campaign_kind=kind, item_code=f"{campaign}{first}{k}",
                        case=f"C{k:03d}", item_kind="pair", source=source, other_source=other,
                        rater=raters[k % len(raters)], instrument="source_id",
                        answer="A" if pick == source else "B", value=pick))
    return rows


def assessment_frame() -> pd.DataFrame:
    rows = []
    # Campaign 1, prospective: ai_alone vs scp, 34 of 40 right (r1 17/20, r2 17/20).
    rows += source_id_rows(1, "prospective", "ai_alone", "scp", ["ai_alone"] * 34 + ["scp"] * 6)
    # ai_assisted vs scp: 10 of 20 right.
    rows += source_id_rows(1, "prospective", "ai_assisted", "scp",
                           ["ai_assisted", "scp"] * 10)
    # Skipped: both AI-involved; an answer not resolved to a source; an unknown source.
    rows += source_id_rows(1, "prospective", "ai_assisted", "ai_alone", ["ai_alone"] * 3)
    rows.append(row(campaign=1, campaign_kind="prospective", item_code="x1", case="C900",
                    item_kind="pair", source="ai_alone", other_source="scp", rater="r1",
                    instrument="source_id", answer="A", value="A"))
    rows.append(row(campaign=1, campaign_kind="prospective", item_code="x2", case="C901",
                    item_kind="pair", source="mystery", other_source="scp", rater="r1",
                    instrument="source_id", answer="A", value="mystery"))
    # A preference answer is not a source-identification answer.
    rows.append(row(campaign=1, campaign_kind="prospective", item_code="x3", case="C902",
                    item_kind="pair", source="ai_assisted", other_source="scp", rater="r1",
                    instrument="preference", answer="A", value="ai_assisted"))
    # Campaign 2, retrospective: model:m1 vs published 6 of 30 right (opposite guessing);
    # an imported source "radgpt" vs published 12 of 25 right.
    rows += source_id_rows(2, "retrospective", "model:m1", "published",
                           ["model:m1"] * 6 + ["published"] * 24)
    rows += source_id_rows(2, "retrospective", "radgpt", "published",
                           ["radgpt"] * 12 + ["published"] * 13)
    # Campaign 3: single-report ratings only.
    rows.append(row(campaign=3, campaign_kind="prospective", item_code="y1", case="C001",
                    item_kind="single", source="scp", arm="scp", rater="r1",
                    instrument="likert", answer="4", value=4.0))
    return pd.DataFrame(rows, columns=COLUMNS)


def test_assessment_per_campaign() -> None:
    result = blinding_assessment(assessment_frame())
    assert result == as_json(result)
    assert result["available"] is True
    assert set(result["campaigns"]) == {"1", "2", "3"}

    one = result["campaigns"]["1"]
    assert one["available"] and one["campaign"] == 1 and one["campaign_kind"] == "prospective"
    assert one["n_answers"] == 40 + 20 + 3 + 2
    assert one["n_scored"] == 60
    assert one["skipped"] == {"answer_not_resolved_to_a_source": 1, "both_ai_involved": 3,
                              "unknown_source": 1}
    alone = one["comparisons"]["ai_alone vs scp"]
    assert alone["labels"] == ["ai_alone", "scp"]
    assert alone["matrix"] == [[34, 6], [6, 34]]
    assert (alone["n_answers"], alone["correct"], alone["incorrect"]) == (40, 34, 6)
    assert alone["bang"] == as_json(bang_index(34, 6))
    assert alone["bang"]["bi"] == pytest.approx(0.7)
    assert alone["bang"]["blinding_in_doubt"]
    assert alone["accuracy"]["proportion"] == pytest.approx(0.85)
    assert alone["p_vs_chance"] == pytest.approx(sps.binomtest(34, 40).pvalue, rel=1e-9)
    assert alone["per_rater"]["r1"]["bi"] == pytest.approx((17 - 3) / 20)
    assert alone["per_rater"]["r2"]["n"] == 20

    assisted = one["comparisons"]["ai_assisted vs scp"]
    assert assisted["matrix"] == [[10, 10], [10, 10]]
    assert assisted["bang"]["bi"] == 0 and not assisted["bang"]["blinding_in_doubt"]

    # Per source, pooled over the comparisons it is in: scp is in both (34 + 10 right of 60).
    assert one["per_source"]["scp"]["bi"] == pytest.approx((44 - 16) / 60)
    assert one["per_source"]["scp"]["ai_involved"] is False
    assert one["per_source"]["ai_alone"]["ai_involved"] is True
    assert one["per_source"]["ai_alone"]["bi"] == pytest.approx(0.7)
    assert one["pooled"]["n"] == 60
    assert one["blinding_in_doubt"] is True
    assert ("Raters identified the AI-alone draft more often than chance when it was paired "
            "with the SCP report (BI 0.70, 95% CI ") in one["verdict"]
    assert "the blinding of the preference and quality ratings is in doubt." in one["verdict"]
    assert ("guesses between the AI-assisted report and the SCP report were consistent with "
            "chance (BI 0.00") in one["verdict"]


def test_assessment_retrospective_and_unavailable_campaign() -> None:
    result = blinding_assessment(assessment_frame())
    two = result["campaigns"]["2"]
    model = two["comparisons"]["model:m1 vs published"]
    assert model["bang"]["bi"] == pytest.approx((6 - 24) / 30)
    assert model["bang"]["opposite_guessing"] and two["opposite_guessing"]
    assert "opposite guessing" in two["verdict"]
    assert "Raters picked the published report as the AI-written one" in two["verdict"]
    imported = two["comparisons"]["radgpt vs published"]
    assert imported["matrix"] == [[12, 13], [13, 12]]
    assert not two["blinding_in_doubt"]
    assert "does not rule out substantial unblinding" in two["verdict"]

    three = result["campaigns"]["3"]
    assert three["available"] is False
    assert "no source-identification answers" in three["reason"]
    assert three["verdict"].startswith("Blinding could not be assessed")


def test_assessment_few_answers_and_other_confidence() -> None:
    frame = pd.DataFrame(source_id_rows(5, "prospective", "ai_alone", "scp",
                                        ["ai_alone"] * 7 + ["scp"]), columns=COLUMNS)
    result = blinding_assessment(frame, confidence=0.90)
    entry = result["campaigns"]["5"]
    assert entry["comparisons"]["ai_alone vs scp"]["bang"] == as_json(
        bang_index(7, 1, confidence=0.90))
    assert "90% CI" in entry["verdict"]
    assert "Only 8 answers" in entry["verdict"]


def test_assessment_nothing_to_assess() -> None:
    empty = blinding_assessment(pd.DataFrame(columns=COLUMNS))
    assert empty["available"] is False and empty["reason"]
    assert empty == as_json(empty)

    neither = pd.DataFrame(source_id_rows(4, "retrospective", "published", "scp",
                                          ["scp", "published"]), columns=COLUMNS)
    result = blinding_assessment(neither)
    assert result["available"] is False
    entry = result["campaigns"]["4"]
    assert entry["available"] is False
    assert entry["skipped"] == {"neither_ai_involved": 2}
    assert "exactly one AI-involved" in entry["reason"]
    assert result == as_json(result)


# --------------------------------------------------------------------------------------------
# consistency_flags
# --------------------------------------------------------------------------------------------

ERROR_TYPES = ("false_finding", "omitted_finding", "wrong_location", "wrong_severity",
               "false_comparison", "omitted_comparison")


def rated(campaign: int, item_code: str, rater: str, *, case: str = "C001",
          source: str = "ai_assisted", errors: dict | None = None, **answers) -> list[dict]:
    """One rater's answers on one report, as ``analysis.datasets.ratings`` lays them out: one
    row per instrument, error counts one row per type and significance (every type, zeros
    included, as ``rating.instruments.validate`` stores them), value = float(count)."""
    arm = source if source in ("ai_assisted", "scp") else None
    common = dict(campaign=campaign, campaign_kind="prospective", item_code=item_code,
                  case=case, item_kind="single", source=source, arm=arm, rater=rater,
                  reader="reader1")
    rows = []
    for instrument, answer in answers.items():
        try:
            value: object = float(answer)
        except ValueError:
            value = answer
        rows.append(row(**common, instrument=instrument, answer=answer, value=value))
    if errors is not None:
        for error_type in ERROR_TYPES:
            for significance in ("significant", "insignificant"):
                count = errors.get(error_type, {}).get(significance, 0)
                rows.append(row(**common, instrument=f"errors.{error_type}.{significance}",
                                answer=count, value=float(count)))
    return rows


SIG = {"omitted_finding": {"significant": 1}, "false_finding": {"significant": 1}}
MINOR = {"wrong_severity": {"insignificant": 2}}


def flags_frame() -> pd.DataFrame:
    rows = []
    # Campaign 1: RADPEER 1-5 (it has 2-5 answers).
    rows += rated(1, "i1", "r1", errors=SIG, radpeer="5", likert="5", acceptability="A")
    rows += rated(1, "i2", "r1", errors=MINOR, radpeer="5", likert="4", acceptability="B")
    rows += rated(1, "i3", "r2", errors={}, radpeer="3", likert="3", acceptability="C")
    rows += rated(1, "i4", "r2", radpeer="3", likert="3")  # no error counts: nothing to compare
    rows += rated(1, "i5", "r2", likert="5", acceptability="D")
    rows += rated(1, "i6", "r1", likert="1", acceptability="A")
    rows += rated(1, "i7", "r3", errors={"false_finding": {"insignificant": 1}}, radpeer="4",
                  likert="4", acceptability="B")  # consistent
    # Another rater's errors on the same report do not make r3's agreement a contradiction.
    rows += rated(1, "i8", "r3", errors={}, radpeer="5", likert="5", acceptability="A")
    rows += rated(1, "i9", "r3", errors=SIG, radpeer="1", likert="2", acceptability="D")
    # Campaign 2: ACR RADPEER 2016 (it has a 2a answer); "1" is concur.
    rows += rated(2, "a1", "r1", errors={"wrong_location": {"significant": 2}}, radpeer="1")
    rows += rated(2, "a2", "r1", errors=MINOR, radpeer="1")  # ACR 1 with a minor slip: fine
    rows += rated(2, "a3", "r2", errors={}, radpeer="2b")
    rows += rated(2, "a4", "r2", errors={}, radpeer="2a")
    # Campaign 3: only "1" answers, variant unknown.
    rows += rated(3, "u1", "r1", errors=SIG, radpeer="1")
    # Pair answers are not single-report ratings.
    rows.append(row(campaign=1, campaign_kind="prospective", item_code="p1", case="C001",
                    item_kind="pair", source="ai_assisted", other_source="scp", rater="r1",
                    instrument="preference", answer="A", value="ai_assisted"))
    return pd.DataFrame(rows, columns=COLUMNS)


def flagged(result: dict) -> set[tuple[int, str, str, str]]:
    return {(f["campaign"], f["item_code"], f["rater"], f["rule"]) for f in result["flags"]}


def test_variants_read_from_the_answers() -> None:
    frame = flags_frame()
    assert radpeer_variants(frame) == {1: "reference", 2: "acr2016", 3: None}
    assert radpeer_variants(frame, [3])[3] == "acr2016"


def test_consistency_flags() -> None:
    result = consistency_flags(flags_frame())
    assert result == as_json(result)
    assert result["available"] is True
    assert flagged(result) == {
        (1, "i1", "r1", "radpeer_agreement_with_significant_errors"),
        (1, "i1", "r1", "likert_5_with_significant_errors"),
        (1, "i1", "r1", "acceptable_as_is_with_significant_errors"),
        (1, "i2", "r1", "radpeer_complete_agreement_with_minor_errors"),
        (1, "i3", "r2", "radpeer_significant_discrepancy_without_significant_errors"),
        (1, "i5", "r2", "likert_acceptability_contradiction"),
        (1, "i6", "r1", "likert_acceptability_contradiction"),
        (2, "a1", "r1", "radpeer_agreement_with_significant_errors"),
        (2, "a3", "r2", "radpeer_significant_discrepancy_without_significant_errors"),
    }
    first = next(f for f in result["flags"] if f["item_code"] == "i1"
                 and f["rule"] == "radpeer_agreement_with_significant_errors")
    assert set(first) == {"campaign", "item_code", "rater", "case", "source", "arm", "rule",
                          "details"}
    assert (first["case"], first["source"], first["arm"]) == ("C001", "ai_assisted",
                                                              "ai_assisted")
    assert first["details"] == ("RADPEER (1-5) 5 (complete agreement) with 2 clinically "
                                "significant error(s): false_finding 1, omitted_finding 1")
    acr = next(f for f in result["flags"] if f["item_code"] == "a1")
    assert acr["details"] == ("RADPEER (ACR 2016) 1 (concur) with 2 clinically significant "
                              "error(s): wrong_location 2")
    assert acr["arm"] == "ai_assisted"
    counts = result["counts"]
    assert counts["flags"] == 9
    assert counts["items_checked"] == 14
    assert counts["items_flagged"] == 7
    assert counts["per_rule"] == {
        "radpeer_agreement_with_significant_errors": 2,
        "likert_5_with_significant_errors": 1,
        "acceptable_as_is_with_significant_errors": 1,
        "radpeer_complete_agreement_with_minor_errors": 1,
        "radpeer_significant_discrepancy_without_significant_errors": 2,
        "likert_acceptability_contradiction": 2,
    }
    assert set(counts["per_rule"]) == set(RULES)
    assert counts["per_rater"] == {
        "r1": {"flags": 6, "items_flagged": 4, "items_checked": 6},
        "r2": {"flags": 3, "items_flagged": 3, "items_checked": 5},
        "r3": {"flags": 0, "items_flagged": 0, "items_checked": 3},
    }
    assert any("every RADPEER answer is '1'" in note and "[3]" in note
               for note in result["notes"])


def test_unknown_variant_placed_by_the_caller() -> None:
    result = consistency_flags(flags_frame(), acr_campaigns=[3])
    assert (3, "u1", "r1", "radpeer_agreement_with_significant_errors") in flagged(result)
    assert result["notes"] == []


def test_numeric_answers_as_numbers() -> None:
    """Hand-made tables may hold numbers where the datasets hold level codes ("5")."""
    rows = rated(7, "n1", "r1", errors=SIG, likert="5", radpeer="4")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["answer"] = frame["answer"].map(lambda a: float(a) if a in ("5", "4") else a)
    assert flagged(consistency_flags(frame)) == {
        (7, "n1", "r1", "likert_5_with_significant_errors")}


def test_nothing_to_check() -> None:
    empty = consistency_flags(pd.DataFrame(columns=COLUMNS))
    assert empty["available"] is False and empty["flags"] == []
    pairs_only = pd.DataFrame(source_id_rows(1, "prospective", "ai_alone", "scp", ["scp"]),
                              columns=COLUMNS)
    result = consistency_flags(pairs_only)
    assert result["available"] is False
    assert "no single-report ratings" in result["reason"]
    assert result == as_json(result)
    clean = consistency_flags(pd.DataFrame(
        rated(1, "c1", "r1", errors={}, radpeer="4", likert="4", acceptability="B"),
        columns=COLUMNS))
    assert clean["available"] is True and clean["flags"] == []
    assert clean["counts"]["per_rater"] == {
        "r1": {"flags": 0, "items_flagged": 0, "items_checked": 1}}
