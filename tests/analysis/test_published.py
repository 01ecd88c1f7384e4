"""``analysis.published`` and ``manage.py check_published`` against independent computations.

Every recomputed number is checked against something that does not share its code:
``scipy.stats.ttest_ind_from_stats`` for t and P, a t-based CI written out here from its
formula, ``scipy.stats.ttest_rel`` on data built to have exactly the published means, SDs and
the fitted within-case correlation, and a brute-force search over means and SDs within their
published rounding for the "reproduces" verdict. The published numbers are PROTOCOL.md's.
"""

from __future__ import annotations

import csv
import io
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import stats as sps

from analysis import published as P
from analysis.management.commands.check_published import Command

N = 297
#: PROTOCOL.md's prospective results: (first arm, second arm) of ``direction`` as
#: (mean, sd), the published CI.
PUBLISHED = {
    "quality": ((4.37, 0.50), (4.11, 0.81), (0.160, 0.328)),
    "agreement": ((4.27, 0.61), (4.09, 0.86), (0.089, 0.279)),
    "reading time": ((146.6, 49.8), (119.4, 45.3), (19.47, 34.83)),
}
HEADER = ",".join(P.COLUMNS)


@pytest.fixture(scope="module")
def checks() -> dict[str, P.OutcomeCheck]:
    return {c.outcome: c for c in P.check_published(P.read_summary(P.EXAMPLE_FILE))}


def hand_ci(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int, *, pooled: bool,
            confidence: float = 0.95) -> tuple[float, float, float]:
    """The t-based CI of m1 − m2 written out from the textbook formulas: (low, high, df)."""
    if pooled:
        sp2 = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2)
        se = math.sqrt(sp2 / n1 + sp2 / n2)
        df = n1 + n2 - 2
    else:
        v1, v2 = s1**2 / n1, s2**2 / n2
        se = math.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    q = sps.t.ppf(1 - (1 - confidence) / 2, df)
    return m1 - m2 - q * se, m1 - m2 + q * se, df


def round_half_up(x: float, decimals: int) -> float:
    return float(Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP))


def summary_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def outcome_rows(outcome="x", unit="u", a=("A", 50, "1.0", "1.0"), b=("B", 50, "0.5", "1.0"),
                 diff="0.5", low="", high="", p="", direction="A - B") -> list[str]:
    return [f"{outcome},{unit},{arm},{n},{m},{s},{diff},{low},{high},{p},{direction}"
            for arm, n, m, s in (a, b)]


# ------------------------------------------------------------------------ the example file

def test_example_file_holds_protocol_numbers(checks):
    assert list(checks) == ["quality", "agreement", "reading time"]
    for name, ((m1, s1), (m2, s2), (low, high)) in PUBLISHED.items():
        c = checks[name]
        assert (c.mean_a, c.sd_a, c.mean_b, c.sd_b, c.n_a, c.n_b) == (m1, s1, m2, s2, N, N)
        assert (float(c.published_ci_low), float(c.published_ci_high)) == (low, high)
        assert c.published_p == "<0.001"
    assert checks["quality"].direction == "AI-assisted - SCP"
    assert checks["reading time"].direction == "SCP - AI-assisted"
    assert checks["reading time"].mean_difference == pytest.approx(27.2)  # SCP is slower


@pytest.mark.parametrize("name", list(PUBLISHED))
@pytest.mark.parametrize("design, pooled", [(P.STUDENT, True), (P.WELCH, False)])
def test_independent_designs_match_scipy_and_a_hand_ci(checks, name, design, pooled):
    (m1, s1), (m2, s2), _ = PUBLISHED[name]
    d = checks[name].design(design)
    ref = sps.ttest_ind_from_stats(m1, s1, N, m2, s2, N, equal_var=pooled)
    low, high, df = hand_ci(m1, s1, N, m2, s2, N, pooled=pooled)
    assert d.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert d.t == pytest.approx(ref.statistic, rel=1e-9)
    assert d.df == pytest.approx(df, rel=1e-12)
    assert d.ci_low == pytest.approx(low, abs=1e-9)
    assert d.ci_high == pytest.approx(high, abs=1e-9)
    assert d.difference == pytest.approx(m1 - m2, abs=1e-12)


def test_reading_time_reproduces_under_the_independent_t_test(checks):
    c = checks["reading time"]
    student = c.design(P.STUDENT)
    assert student.ci_reproduces is True
    # Not from the means as published: 146.6 − 119.4 = 27.2 centres the CI on 27.2, the
    # published one is centred on 27.15 (means with more decimals than printed).
    low, high, _ = hand_ci(119.4, 45.3, N, 146.6, 49.8, N, pooled=True)  # AI − SCP
    assert (round_half_up(-high, 2), round_half_up(-low, 2)) == (19.53, 34.87)
    assert student.ci_exact is False
    assert c.design(P.WELCH).ci_reproduces is True
    assert c.reproduced_by[:2] == (P.STUDENT, P.WELCH)
    assert c.centre_consistent is True and c.difference_consistent is True
    assert c.independent_n == pytest.approx(N, abs=1)  # the width says n = 297 per arm


def test_quality_and_agreement_do_not_reproduce_independently(checks):
    for name in ("quality", "agreement"):
        for design in (P.STUDENT, P.WELCH):
            assert checks[name].design(design).ci_reproduces is False, (name, design)
            assert checks[name].design(design).ci_exact is False
    assert checks["quality"].reproduced_by == ()
    assert checks["agreement"].reproduced_by == (P.PAIRED,)


def brute_force_reproduces(m1: str, s1: str, m2: str, s2: str, low: str, high: str,
                           n: int = N, points: int = 21) -> bool:
    """Search means and SDs on a grid within their published rounding (vectorised hand
    Student CI) for one whose CI ends round to the published ends."""
    def around(text: str) -> np.ndarray:
        half = 0.5 * 10.0 ** Decimal(text).as_tuple().exponent
        return np.linspace(float(text) - half, float(text) + half, points)

    a, b, sa, sb = np.meshgrid(around(m1), around(m2), around(s1), around(s2), indexing="ij")
    se = np.sqrt((sa**2 + sb**2) / 2 * (2 / n))
    q = sps.t.ppf(0.975, 2 * n - 2)
    lows, highs = a - b - q * se, a - b + q * se
    dl, dh = (-Decimal(x).as_tuple().exponent for x in (low, high))
    hit = ((np.abs(lows - float(low)) <= 0.5 * 10.0**-dl)
           & (np.abs(highs - float(high)) <= 0.5 * 10.0**-dh))
    return bool(hit.any())


def test_the_verdicts_agree_with_a_brute_force_search(checks):
    assert brute_force_reproduces("146.6", "49.8", "119.4", "45.3", "19.47", "34.83")
    assert not brute_force_reproduces("4.37", "0.50", "4.11", "0.81", "0.160", "0.328")
    assert not brute_force_reproduces("4.27", "0.61", "4.09", "0.86", "0.089", "0.279")


def test_the_verdicts_agree_with_the_closed_form(checks):
    """Equal rounding on both ends: the CI is attainable iff the L1 distance from (published
    centre, half-width) to the box of attainable (difference, half-width) is <= half a unit."""
    def dist(x, lo, hi):
        return max(lo - x, 0.0, x - hi)

    texts = {"quality": ("4.37", "0.50", "4.11", "0.81"),
             "agreement": ("4.27", "0.61", "4.09", "0.86"),
             "reading time": ("146.6", "49.8", "119.4", "45.3")}
    for name, (m1, s1, m2, s2) in texts.items():
        c = checks[name]
        u_mean = 10.0 ** Decimal(m1).as_tuple().exponent  # both means have the same digits
        u_sd = 10.0 ** Decimal(s1).as_tuple().exponent
        d_lo = abs(float(m1) - float(m2)) - u_mean
        d_hi = abs(float(m1) - float(m2)) + u_mean
        q = sps.t.ppf(0.975, 2 * N - 2)
        h_lo = q * math.sqrt(((float(s1) - u_sd / 2) ** 2 + (float(s2) - u_sd / 2) ** 2) / N)
        h_hi = q * math.sqrt(((float(s1) + u_sd / 2) ** 2 + (float(s2) + u_sd / 2) ** 2) / N)
        low, high = float(c.published_ci_low), float(c.published_ci_high)
        u = 10.0 ** Decimal(c.published_ci_low).as_tuple().exponent
        expected = (dist((low + high) / 2, d_lo, d_hi) + dist((high - low) / 2, h_lo, h_hi)
                    <= u / 2 + 1e-12)
        assert c.design(P.STUDENT).ci_reproduces is bool(expected), name


def paired_data(m1, s1, m2, s2, r, n, seed=0):
    """x, y with exactly these sample means, SDs (n − 1) and Pearson correlation r."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    z -= z.mean(axis=0)
    q, _ = np.linalg.qr(z)  # orthonormal, centred columns
    u1, u2 = q[:, 0] * math.sqrt(n - 1), q[:, 1] * math.sqrt(n - 1)
    return m1 + s1 * u1, m2 + s2 * (r * u1 + math.sqrt(1 - r**2) * u2)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_paired_r_gives_the_published_width_on_real_paired_data(checks, name):
    (m1, s1), (m2, s2), (low, high) = PUBLISHED[name]
    c = checks[name]
    x, y = paired_data(m1, s1, m2, s2, c.paired_r, N)
    assert np.corrcoef(x, y)[0, 1] == pytest.approx(c.paired_r, abs=1e-12)
    ref = sps.ttest_rel(x, y)
    ci = ref.confidence_interval(0.95)
    assert ci.high - ci.low == pytest.approx(high - low, abs=1e-9)
    paired = c.design(P.PAIRED)
    assert paired.p == pytest.approx(ref.pvalue, rel=1e-6)
    assert (paired.ci_low, paired.ci_high) == (pytest.approx(ci.low, abs=1e-9),
                                              pytest.approx(ci.high, abs=1e-9))
    assert paired.sd_difference == pytest.approx(np.std(x - y, ddof=1), rel=1e-9)


def test_paired_r_and_independent_n_values(checks):
    # quality: SD_d = 0.084·sqrt(297)/t_{296} → r = (0.81² + 0.5² − SD_d²)/(2·0.81·0.5)
    sd_d = 0.084 * math.sqrt(N) / sps.t.ppf(0.975, N - 1)
    r = (0.81**2 + 0.5**2 - sd_d**2) / (2 * 0.81 * 0.5)
    q = checks["quality"]
    assert q.paired_r == pytest.approx(r, abs=1e-12)
    assert q.paired_r == pytest.approx(0.451, abs=5e-4)
    assert q.paired_r_low < q.paired_r < q.paired_r_high
    assert checks["agreement"].paired_r == pytest.approx(0.400, abs=5e-4)
    assert abs(checks["reading time"].paired_r) < 0.01  # independence fits reading time
    # the n per arm that gives half-width 0.084 in a Student design
    n = q.independent_n
    assert sps.t.ppf(0.975, 2 * n - 2) * math.sqrt((0.81**2 + 0.5**2) / n) == pytest.approx(
        0.084, abs=1e-9)
    assert 490 < n < 500
    assert q.independent_n_low < n < q.independent_n_high


def test_quality_centre_is_not_the_difference_of_the_means(checks):
    q = checks["quality"]
    assert q.ci_centre == pytest.approx((0.160 + 0.328) / 2)
    assert q.mean_difference == pytest.approx(0.26, abs=1e-15)
    assert (q.mean_difference_low, q.mean_difference_high) == (pytest.approx(0.25),
                                                              pytest.approx(0.27))
    assert q.centre_consistent is False and q.difference_consistent is False
    assert q.design(P.PAIRED).ci_reproduces is False  # the width fits, the centre does not
    assert any("0.244" in f and "not centred" in f for f in q.findings)
    a = checks["agreement"]
    assert a.centre_consistent is True and a.difference_consistent is True


def test_agreement_p_is_not_reproduced_by_independent_tests(checks):
    a = checks["agreement"]
    ref = sps.ttest_ind_from_stats(4.27, 0.61, N, 4.09, 0.86, N)
    assert ref.pvalue > 0.001
    assert a.design(P.STUDENT).p_reproduces is False
    assert a.design(P.WELCH).p_reproduces is False
    assert a.design(P.PAIRED).p_reproduces is True
    assert all(d.p_reproduces for d in checks["quality"].designs)


def test_exact_rule_on_a_ci_printed_from_the_rounded_means():
    low, high, _ = hand_ci(2.5, 1.2, 40, 2.0, 1.1, 40, pooled=True)
    rows = outcome_rows(a=("A", 40, "2.5", "1.2"), b=("B", 40, "2.0", "1.1"),
                        low=f"{low:.3f}", high=f"{high:.3f}")
    c = P.check_outcome(P.parse_summary(summary_text(*rows))[0])
    assert c.design(P.STUDENT).ci_exact is True
    assert c.design(P.STUDENT).ci_reproduces is True
    # one unit off in the last digit of an end is no longer exact
    rows = outcome_rows(a=("A", 40, "2.5", "1.2"), b=("B", 40, "2.0", "1.1"),
                        low=f"{low + 0.001:.3f}", high=f"{high:.3f}")
    c = P.check_outcome(P.parse_summary(summary_text(*rows))[0])
    assert c.design(P.STUDENT).ci_exact is False


def test_unequal_n_has_no_paired_design_and_impossible_r_is_said():
    rows = outcome_rows(a=("A", 40, "2.5", "1.2"), b=("B", 60, "2.0", "1.1"), low="0.1",
                        high="0.9")
    c = P.check_outcome(P.parse_summary(summary_text(*rows))[0])
    assert c.design(P.PAIRED) is None and c.paired_r is None
    assert any("different n" in f for f in c.findings)
    # a CI far narrower than any correlation allows: |SD_d| < |sd_a − sd_b| needs r > 1
    rows = outcome_rows(a=("A", 40, "2.5", "1.0"), b=("B", 40, "2.0", "2.0"), low="0.49",
                        high="0.51")
    c = P.check_outcome(P.parse_summary(summary_text(*rows))[0])
    assert c.paired_r > 1 and c.design(P.PAIRED) is None
    assert any("outside -1 to 1" in f for f in c.findings)


def test_no_published_ci_is_recomputed_only_and_p_follows_the_rounding():
    ref = sps.ttest_ind_from_stats(1.0, 1.0, 50, 0.5, 1.0, 50)
    assert round(ref.pvalue, 3) == 0.014
    # means and SDs to 3 decimals: P can only be 0.0141 or very near it
    a, b = ("A", 50, "1.000", "1.000"), ("B", 50, "0.500", "1.000")
    for p, holds in (("0.014", True), ("0.03", False), ("<0.05", True), ("<0.01", False)):
        c = P.check_outcome(P.parse_summary(summary_text(*outcome_rows(a=a, b=b, p=p)))[0])
        assert c.design(P.STUDENT).ci_reproduces is None
        assert c.design(P.STUDENT).p == pytest.approx(ref.pvalue, rel=1e-9)
        assert c.design(P.STUDENT).p_reproduces is holds, p
        assert [d.design for d in c.designs] == [P.STUDENT, P.WELCH]
    # to 1 decimal (1.0 ± 0.05 and so on) the inputs leave room for P = 0.03
    c = P.check_outcome(P.parse_summary(summary_text(*outcome_rows(p="0.03")))[0])
    assert c.design(P.STUDENT).p_reproduces is True
    smallest_t = (0.95 - 0.55) / math.sqrt((1.05**2 + 1.05**2) / 50)
    assert 2 * sps.t.sf(smallest_t, 98) > 0.035  # hand check: the range reaches past 0.03


# -------------------------------------------------------------------- numbers as printed

def test_reported_numbers_keep_their_rounding():
    x = P.Reported.parse("0.160")
    assert (x.value, x.decimals, x.interval) == (0.16, 3, (0.1595, 0.1605))
    assert x.rounds_to(0.16049) and x.rounds_to(0.1595) and not x.rounds_to(0.1605 + 1e-9)
    assert P.Reported.parse(" 27.2 ").decimals == 1
    for bad in ("", "abc", "nan", "inf", "4,11"):
        with pytest.raises(ValueError):
            P.Reported.parse(bad)


@pytest.mark.parametrize("text, p, holds", [
    ("<0.001", 0.0009, True), ("< 0.001", 0.0011, False), ("P<0.05", 0.01, True),
    ("0.003", 0.0034, True), ("0.003", 0.0036, False), (">0.05", 0.2, True),
    ("≤0.001", 0.001, True),
])
def test_published_p(text, p, holds):
    assert P.PublishedP.parse(text).holds(p) is holds


# ------------------------------------------------------------------------ malformed files

@pytest.mark.parametrize("text, expected", [
    ("", ["line 1: the file is empty"]),
    (summary_text(*outcome_rows(), header=HEADER.replace(",sd", "")),
     ["line 1: missing column(s) sd"]),
    (summary_text(*outcome_rows(a=("A", 50, "high", "1.0"))), ["line 2: mean: 'high' is not"]),
    (summary_text(*outcome_rows(b=("B", "4.5", "0.5", "1.0"))), ["line 3: n: '4.5'"]),
    (summary_text(*outcome_rows(b=("B", 50, "0.5", "-1"))), ["line 3: sd: '-1' is negative"]),
    (summary_text(outcome_rows()[0], *outcome_rows("y")),
     ["line 2: outcome 'x' has only one arm ('A')"]),
    (summary_text(*outcome_rows(), outcome_rows()[0]), ["line 4: outcome 'x', arm 'A' already"]),
    (summary_text(*outcome_rows(), outcome_rows(a=("C", 50, "1", "1"))[0]),
     ["line 4: outcome 'x' has a third arm ('C')"]),
    (summary_text(*outcome_rows(direction="A-B")), ["line 2: outcome 'x': direction 'A-B'"]),
    (summary_text(*outcome_rows(low="0.1")), ["line 2: outcome 'x': published_ci_low and"]),
    (summary_text(*outcome_rows(low="0.9", high="0.1")), ["the low end is above"]),
    (summary_text(*outcome_rows(p="small")), ["published_p: 'small' is not a number"]),
    (summary_text(outcome_rows()[0], outcome_rows(diff="0.6")[1]),
     ["line 3: outcome 'x': published_difference '0.6' differs from '0.5' on line 2"]),
    (summary_text("x,u,A,50,1.0"), ["line 2: 5 field(s), the header has 11"]),
    (summary_text(outcome_rows()[0], outcome_rows(b=("B", 50, "0,5", "1.0"))[1]),
     ["line 3: 12 field(s), the header has 11 (a decimal comma"]),
    (summary_text(*outcome_rows(a=("A", 50, "x", "1.0")), *outcome_rows("y", b=("", 5, "1", "1"))),
     ["line 2: mean:", "line 5: arm is empty"]),
])
def test_malformed_files_say_which_line(tmp_path, text, expected):
    path = tmp_path / "summary.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(P.SummaryFileError) as info:
        P.read_summary(path)
    for fragment in expected:
        assert fragment in str(info.value), str(info.value)
    out = tmp_path / "out"
    with pytest.raises(CommandError) as info:
        call_command("check_published", "--file", str(path), "--out", str(out),
                     stdout=io.StringIO())
    assert expected[0] in str(info.value)
    assert not out.exists()  # nothing written, not even the directory


def test_trailing_empty_fields_blank_lines_and_a_bom_are_accepted():
    rows = [row + ",," for row in outcome_rows()]
    text = "\ufeff" + summary_text(rows[0], "", " , ,", rows[1]).replace("\n", "\r\n")
    (only,) = P.parse_summary(text.removeprefix("\ufeff"))
    assert (only.first.name, only.second.name, only.first.n) == ("A", "B", 50)


def test_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot check"):
        call_command("check_published", "--file", str(tmp_path / "none.csv"),
                     stdout=io.StringIO())


# ------------------------------------------------------------------------------ the command

def test_command_prints_the_table_and_writes_csv_and_json(tmp_path):
    out = io.StringIO()
    call_command("check_published", "--out", str(tmp_path / "o"), stdout=out)
    text = out.getvalue()
    assert "reading time (s)" in text and "27.2 (19.47 to 34.83), P <0.001" in text
    assert "0.24 (0.160 to 0.328)" in text and "r = 0.451" in text
    assert "Rule: A published CI reproduces" in text
    with open(tmp_path / "o" / "published_check.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["outcome"] for r in rows] == ["quality"] * 3 + ["agreement"] * 3 + [
        "reading time"] * 3
    by = {(r["outcome"], r["design"]): r for r in rows}
    student = by[("reading time", P.STUDENT)]
    low, high, _ = hand_ci(146.6, 49.8, N, 119.4, 45.3, N, pooled=True)
    assert float(student["ci_low"]) == pytest.approx(low, abs=1e-9)
    assert float(student["ci_high"]) == pytest.approx(high, abs=1e-9)
    assert student["ci_reproduces"] == "True" and student["published_ci_low"] == "19.47"
    assert by[("quality", P.STUDENT)]["published_ci_low"] == "0.160"  # as printed
    assert by[("quality", P.STUDENT)]["ci_reproduces"] == "False"
    data = json.loads((tmp_path / "o" / "published_check.json").read_text(encoding="utf-8"))
    assert data["rule"] == P.RULE
    quality = data["outcomes"][0]
    assert quality["outcome"] == "quality" and quality["centre_consistent"] is False
    ref = sps.ttest_ind_from_stats(4.37, 0.50, N, 4.11, 0.81, N, equal_var=False)
    assert quality["designs"][1]["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.endswith(".tmp")]


def test_csv_text_is_neutralised_against_formulas(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(summary_text(*outcome_rows(outcome="=1+2")), encoding="utf-8")
    call_command("check_published", "--file", str(path), "--out", str(tmp_path / "o"),
                 stdout=io.StringIO())
    with open(tmp_path / "o" / "published_check.csv", newline="", encoding="utf-8") as f:
        assert {r["outcome"] for r in csv.DictReader(f)} == {"'=1+2"}


def test_out_blocked_by_a_directory_writes_nothing(tmp_path):
    out = tmp_path / "o"
    (out / "published_check.json").mkdir(parents=True)
    with pytest.raises(CommandError, match="nothing written"):
        call_command("check_published", "--out", str(out), stdout=io.StringIO())
    assert sorted(p.name for p in out.iterdir()) == ["published_check.json"]


def test_help_documents_every_column_and_the_rule():
    text = Command().create_parser("manage.py", "check_published").format_help()
    for column in P.COLUMNS:
        assert column in text
    assert "published_ci_low,     the published 95% CI" in text  # the list kept as written
    assert "round (half up) to the published" in " ".join(text.split())
    for column in P.COLUMNS:
        assert f"``{column}``" in P.__doc__


def test_example_file_is_where_the_module_says(checks):
    assert Path(P.__file__).parent / "examples" / "reference_trial_summary.csv" == P.EXAMPLE_FILE
    with open(P.EXAMPLE_FILE, newline="", encoding="utf-8") as f:
        assert tuple(next(csv.reader(f))) == P.COLUMNS
