"""Check a published results table against its own summary statistics.

A trial paper gives, per outcome, each arm's n, mean and SD, and the difference with its 95%
CI and P. From the summary statistics alone the difference, its CI and P can be recomputed
under a given design, which says whether the published numbers are consistent with each other
and with the analysis the paper describes. ``manage.py check_published`` runs this on a CSV
file; ``analysis/examples/reference_trial_summary.csv`` holds the reference trial's
prospective results (``PROTOCOL.md``). Pure: no Django, no database.

The summary file
----------------
CSV, UTF-8, one row per outcome and arm (two rows per outcome), header row first:

============================ ==============================================================
``outcome``                  outcome name; the two rows of an outcome share it
``unit``                     unit of the outcome (text, e.g. ``Likert points``, ``s``)
``arm``                      arm name (e.g. ``SCP``, ``AI-assisted``)
``n``                        number of cases analysed in that arm (whole number >= 2)
``mean``, ``sd``             the arm's mean and SD as published (``4.11``, ``0.81``); the
                             number of decimals written is taken as the published rounding
``published_difference``     the published difference (may be blank)
``published_ci_low``,        the published 95% CI, both ends or neither, written with the
``published_ci_high``        published decimals (``0.160``, not ``0.16``)
``published_p``              the published P: ``0.003``, ``<0.001``, ``> 0.05`` (may be blank)
``direction``                how the difference is taken: ``<arm> - <arm>`` with the arm
                             names as in ``arm``, separated by space-hyphen-space, e.g.
                             ``AI-assisted - SCP`` (arm names may contain hyphens)
============================ ==============================================================

``unit``, ``published_*`` and ``direction`` describe the outcome: they are repeated, identical,
on both of its rows. Other columns are ignored. Problems are reported all at once, each with
its line number (:class:`SummaryFileError`).

What is recomputed
------------------
For every outcome, with D = mean(first arm of ``direction``) − mean(second arm):

* **Student** (independent groups, pooled variance, df = n_a + n_b − 2) and **Welch**
  (Welch–Satterthwaite df): D, SE, t, the 95% CI D ± t_{df, 0.975}·SE and the two-sided P,
  from :func:`analysis.stats.compare_groups_from_summary`.
* **Paired, r fitted** (when both arms have the same n, i.e. the same cases read in both
  arms, and a CI is published): the SD of the within-case differences is
  sqrt(sd_a² + sd_b² − 2·r·sd_a·sd_b) for a within-case correlation r, SE = SD_d/sqrt(n),
  df = n − 1. r is solved so that the CI has the published width; its CI and P follow.
* The **n per arm** that an independent (Student) design with the published SDs needs to give
  the published CI width.
* The published difference and the CI's centre (the implied difference, (low + high)/2) are
  compared with the difference of the published means.

The rule: when does a published CI reproduce?
---------------------------------------------
Published numbers are rounded, and so are the means and SDs they are recomputed from: the
CI of a published difference of 146.6 − 119.4 = 27.2 cannot be recomputed to two decimals
from means given to one. So:

* **exact**: the CI computed from the means and SDs as published has both ends that round
  (half up) to the published ends, to the published number of decimals of each end;
* **reproduces** (the verdict): some means and SDs that round to the published ones (each
  anywhere within half a unit of its last published digit; the n exact) give a CI whose both
  ends round to the published ends. "exact" implies "reproduces".

Concretely, with the difference D ranging over an interval (the means' rounding) and the CI
half-width h over another (the SDs' rounding, found on a grid including the corners), the
published CI reproduces when some D and h in those intervals put D − h and D + h within half
a unit of the published low and high ends (a small linear feasibility problem). The same rule
checks P: ``<0.001`` reproduces when P < 0.001 for some such inputs, a value such as
``0.003`` when P rounds to it.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, stats

from analysis.stats import StatsError, compare_groups_from_summary

__all__ = [
    "COLUMNS", "EXAMPLE_FILE", "RULE", "ArmSummary", "DesignResult", "OutcomeCheck",
    "OutcomeSummary", "PublishedP", "Reported", "SummaryFileError", "check_outcome",
    "check_published", "csv_rows", "format_report", "independent_n_for_half_width",
    "paired_r_for_half_width", "parse_summary", "read_summary", "report_dict", "table_rows",
]

#: Columns of the summary file, in the example file's order.
COLUMNS: tuple[str, ...] = (
    "outcome", "unit", "arm", "n", "mean", "sd", "published_difference", "published_ci_low",
    "published_ci_high", "published_p", "direction",
)
#: Columns that describe the outcome, not the arm: identical on both of its rows.
OUTCOME_COLUMNS: tuple[str, ...] = (
    "unit", "published_difference", "published_ci_low", "published_ci_high", "published_p",
    "direction",
)
EXAMPLE_FILE = Path(__file__).resolve().parent / "examples" / "reference_trial_summary.csv"
RULE = (
    "A published CI reproduces under a design when means and SDs that round to the published "
    "ones (each within half a unit of its last published digit; n exact) give a CI whose both "
    "ends round (half up) to the published ends, to the published decimals. 'exact': the "
    "means and SDs as published already give such a CI. P is checked the same way ('<0.001': "
    "P < 0.001; '0.003': P rounds to 0.003).")
STUDENT, WELCH, PAIRED = "Student", "Welch", "paired, r fitted"
DESIGN_LABELS = {STUDENT: "independent, Student", WELCH: "independent, Welch",
                 PAIRED: "paired, r fitted"}
_GRID = 9  # points per SD across its rounding interval (corners included)
_FEASIBILITY_SLACK = 1e-12  # float noise at the closed ends of the rounding intervals


class SummaryFileError(ValueError):
    """A summary file that cannot be checked; ``problems`` lists each with its line."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = sorted(problems, key=_line_number)  # stable: same line, same order
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) > 1 else "")
        super().__init__(f"{source}: {count}:\n" + "\n".join(f"  {p}" for p in self.problems))


def _line_number(problem: str) -> int:
    match = re.match(r"line (\d+):", problem)
    return int(match.group(1)) if match else 0


# --------------------------------------------------------------------------------------------
# Reported numbers: a value and the place of its last digit
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reported:
    """A number as printed: ``text`` ("0.160"), its value and the place of its last digit
    (``exponent`` -3: the last digit is thousandths)."""

    text: str
    value: float
    exponent: int

    @classmethod
    def parse(cls, text: str) -> Reported:
        """``Reported`` from text; ValueError unless it is one finite decimal number."""
        cleaned = text.strip()
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a number") from None
        if not number.is_finite() or not cleaned:
            raise ValueError(f"{text!r} is not a finite number")
        return cls(text=cleaned, value=float(number), exponent=int(number.as_tuple().exponent))

    @property
    def decimals(self) -> int:
        return max(0, -self.exponent)

    @property
    def half_unit(self) -> float:
        """Half a unit of the last digit: how far the unrounded value can be."""
        return 0.5 * 10.0**self.exponent

    @property
    def half_unit_text(self) -> str:
        return str(Decimal(5).scaleb(self.exponent - 1))

    @property
    def interval(self) -> tuple[float, float]:
        return self.value - self.half_unit, self.value + self.half_unit

    def rounds_to(self, x: float) -> bool:
        """Whether ``x`` rounded half up to this number's last digit is this number."""
        quantum = Decimal(1).scaleb(self.exponent)
        return Decimal(repr(float(x))).quantize(quantum, ROUND_HALF_UP) == Decimal(self.text)

    def format(self, x: float, extra: int = 0) -> str:
        """``x`` printed with this number's decimals (plus ``extra``)."""
        return f"{x:.{self.decimals + extra}f}"


_P_PATTERN = re.compile(r"^\s*(?:p\s*)?(<=|>=|<|>|≤|≥|=)?\s*(\S+)\s*$", re.IGNORECASE)
_RELATIONS = {"<=": "≤", ">=": "≥", "=": "=", None: "="}


@dataclass(frozen=True)
class PublishedP:
    """A published P: "<0.001" (relation "<", bound 0.001) or "0.003" (relation "=")."""

    text: str
    relation: str  # one of < ≤ > ≥ =
    bound: Reported

    @classmethod
    def parse(cls, text: str) -> PublishedP:
        match = _P_PATTERN.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a P value (write 0.003, <0.001 or >0.05)")
        relation = _RELATIONS.get(match.group(1), match.group(1))
        bound = Reported.parse(match.group(2))
        if not 0 <= bound.value <= 1:
            raise ValueError(f"P {text!r} is not between 0 and 1")
        return cls(text=text.strip(), relation=relation, bound=bound)

    def holds(self, p: float) -> bool:
        """Whether a recomputed P agrees with the published one (``=``: rounds to it)."""
        b = self.bound.value
        return {"<": p < b, "≤": p <= b, ">": p > b, "≥": p >= b,
                "=": self.bound.rounds_to(p)}[self.relation]

    def holds_somewhere(self, p_low: float, p_high: float) -> bool:
        """Whether some P in [p_low, p_high] agrees with the published one."""
        b = self.bound.value
        lo, hi = self.bound.interval
        return {"<": p_low < b, "≤": p_low <= b, ">": p_high > b, "≥": p_high >= b,
                "=": p_low <= hi and p_high >= lo}[self.relation]


# --------------------------------------------------------------------------------------------
# The summary file
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArmSummary:
    """One arm of one outcome: n, mean and SD as published, and the file line they came from."""

    name: str
    n: int
    mean: Reported
    sd: Reported
    line: int


@dataclass(frozen=True)
class OutcomeSummary:
    """One outcome: its two arms in the order of ``direction`` (difference = first − second)
    and what was published about the difference."""

    outcome: str
    unit: str
    direction: str
    first: ArmSummary
    second: ArmSummary
    published_difference: Reported | None
    published_ci: tuple[Reported, Reported] | None
    published_p: PublishedP | None


def read_summary(path: Path | str) -> list[OutcomeSummary]:
    """The outcomes of a summary CSV file (format in the module docstring).

    Raises :class:`SummaryFileError` listing every problem with its line number (and
    ``OSError`` if the file cannot be read).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SummaryFileError(str(path), [f"not UTF-8 text ({exc.reason} at byte "
                                           f"{exc.start})"]) from None
    return parse_summary(text, source=str(path))


def parse_summary(text: str, *, source: str = "summary") -> list[OutcomeSummary]:
    """The outcomes of a summary file's text; see :func:`read_summary`."""
    problems: list[str] = []
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise SummaryFileError(source, ["line 1: the file is empty; the first line must be "
                                            "the header: " + ", ".join(COLUMNS)])
        names = [h.strip().lower() for h in header]
        duplicated = sorted({n for n in names if n and names.count(n) > 1})
        if duplicated:
            problems.append(f"line 1: column(s) {', '.join(duplicated)} appear more than once")
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            problems.append(f"line 1: missing column(s) {', '.join(missing)} (the header needs: "
                            f"{', '.join(COLUMNS)})")
        if problems:
            raise SummaryFileError(source, problems)
        index = {c: names.index(c) for c in COLUMNS}
        rows: list[tuple[int, dict[str, str]]] = []
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank line
            extra = record[len(names):]
            if len(record) < len(names) or any(cell.strip() for cell in extra):
                problems.append(f"line {line}: {len(record)} field(s), the header has "
                                f"{len(names)} (a decimal comma, or a comma inside a name "
                                "that is not quoted?)")
                continue
            rows.append((line, {c: record[i].strip() for c, i in index.items()}))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
    if not rows and not problems:
        problems.append("line 2: no data rows (one row per outcome and arm is needed)")

    arms: dict[str, list[ArmSummary]] = {}
    outcome_fields: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        arm = _parse_arm(line, row, problems)
        outcome = row["outcome"]
        if not outcome:
            problems.append(f"line {line}: outcome is empty")
            continue
        if arm is None:
            arms.setdefault(outcome, [])
        else:
            previous = arms.setdefault(outcome, [])
            if any(a.name == arm.name for a in previous):
                first = next(a.line for a in previous if a.name == arm.name)
                problems.append(f"line {line}: outcome {outcome!r}, arm {arm.name!r} already "
                                f"given on line {first}")
                continue
            if len(previous) == 2:
                problems.append(f"line {line}: outcome {outcome!r} has a third arm "
                                f"({arm.name!r}); a comparison needs exactly two (lines "
                                f"{previous[0].line} and {previous[1].line})")
                continue
            previous.append(arm)
        fields = {c: row[c] for c in OUTCOME_COLUMNS}
        if outcome not in outcome_fields:
            outcome_fields[outcome] = (line, fields)
        else:
            first_line, first_fields = outcome_fields[outcome]
            for column in OUTCOME_COLUMNS:
                if fields[column] != first_fields[column]:
                    problems.append(
                        f"line {line}: outcome {outcome!r}: {column} {fields[column]!r} differs "
                        f"from {first_fields[column]!r} on line {first_line} (it describes the "
                        "outcome: repeat it on both rows)")

    outcomes: list[OutcomeSummary] = []
    for outcome, (line, fields) in outcome_fields.items():
        given = arms[outcome]
        if len(given) < 2:
            problems.append(
                f"line {line}: outcome {outcome!r} has "
                + (f"only one arm ({given[0].name!r})" if given else "no valid arm row")
                + "; one row per arm is needed, for two arms")
            continue
        summary = _parse_outcome(outcome, line, fields, given, problems)
        if summary is not None:
            outcomes.append(summary)
    if problems:
        raise SummaryFileError(source, problems)
    return outcomes


def _parse_arm(line: int, row: dict[str, str], problems: list[str]) -> ArmSummary | None:
    found: list[str] = []
    if not row["arm"]:
        found.append("arm is empty")
    n: int | None = None
    try:
        n_value = Reported.parse(row["n"])
        if n_value.value != int(n_value.value) or n_value.value < 2:
            raise ValueError(f"{row['n']!r} is not a whole number of at least 2")
        n = int(n_value.value)
    except ValueError as exc:
        found.append(f"n: {exc}")
    parsed: dict[str, Reported] = {}
    for column in ("mean", "sd"):
        try:
            parsed[column] = Reported.parse(row[column])
        except ValueError as exc:
            found.append(f"{column}: {exc}")
    if "sd" in parsed and parsed["sd"].value < 0:
        found.append(f"sd: {row['sd']!r} is negative")
    if found:
        problems.extend(f"line {line}: {what}" for what in found)
        return None
    assert n is not None
    return ArmSummary(name=row["arm"], n=n, mean=parsed["mean"], sd=parsed["sd"], line=line)


def _parse_outcome(outcome: str, line: int, fields: dict[str, str], arms: list[ArmSummary],
                   problems: list[str]) -> OutcomeSummary | None:
    found: list[str] = []
    names = [a.name for a in arms]
    direction = fields["direction"]
    parts = [p.strip() for p in direction.split(" - ")]
    if len(parts) != 2 or sorted(parts) != sorted(names):
        found.append(f"direction {direction!r} must be '<arm> - <arm>' naming the outcome's two "
                     f"arms, e.g. '{names[1]} - {names[0]}'")
    values: dict[str, Reported | None] = {}
    for column in ("published_difference", "published_ci_low", "published_ci_high"):
        values[column] = None
        if fields[column]:
            try:
                values[column] = Reported.parse(fields[column])
            except ValueError as exc:
                found.append(f"{column}: {exc}")
    low, high = values["published_ci_low"], values["published_ci_high"]
    ci: tuple[Reported, Reported] | None = None
    if bool(fields["published_ci_low"]) != bool(fields["published_ci_high"]):
        found.append("published_ci_low and published_ci_high: give both ends of the CI or "
                     "neither")
    elif low is not None and high is not None:
        if low.value > high.value:
            found.append(f"published CI {low.text} to {high.text}: the low end is above the "
                         "high end")
        else:
            ci = (low, high)
    p: PublishedP | None = None
    if fields["published_p"]:
        try:
            p = PublishedP.parse(fields["published_p"])
        except ValueError as exc:
            found.append(f"published_p: {exc}")
    if found:
        problems.extend(f"line {line}: outcome {outcome!r}: {what}" for what in found)
        return None
    by_name = {a.name: a for a in arms}
    return OutcomeSummary(
        outcome=outcome, unit=fields["unit"], direction=f"{parts[0]} - {parts[1]}",
        first=by_name[parts[0]], second=by_name[parts[1]],
        published_difference=values["published_difference"], published_ci=ci,
        published_p=p)


# --------------------------------------------------------------------------------------------
# Recomputation
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DesignResult:
    """The difference recomputed under one design, and whether it reproduces the publication.

    ``ci_reproduces`` and ``ci_exact`` follow :data:`RULE` (None when no CI is published);
    ``ci_low_offset``/``ci_high_offset`` are recomputed − published ends (from the means and
    SDs as published). ``r`` and ``sd_difference`` are set for the paired design only.
    """

    design: str
    label: str
    difference: float
    se: float
    df: float
    t: float
    ci_low: float
    ci_high: float
    p: float
    p_low: float
    p_high: float
    ci_exact: bool | None
    ci_reproduces: bool | None
    ci_low_offset: float | None
    ci_high_offset: float | None
    p_reproduces: bool | None
    r: float | None = None
    sd_difference: float | None = None


@dataclass(frozen=True)
class OutcomeCheck:
    """Everything recomputed for one outcome (see the module docstring).

    ``mean_difference_low``/``_high``: the difference for means anywhere within their
    rounding. ``ci_centre`` is the implied difference (low + high)/2 of the published CI.
    ``paired_r`` (with its range for CI ends and SDs within their rounding) is the
    within-case correlation a paired design needs for the published CI width (None when the
    arms' n differ or no CI is published; may fall outside [-1, 1], then no paired design gives
    that width); ``independent_n`` is the n per arm an independent Student design needs.
    """

    outcome: str
    unit: str
    direction: str
    arm_a: str
    arm_b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    published_difference: str | None
    published_ci_low: str | None
    published_ci_high: str | None
    published_p: str | None
    confidence: float
    mean_difference: float
    mean_difference_low: float
    mean_difference_high: float
    difference_consistent: bool | None
    ci_centre: float | None
    ci_half_width: float | None
    centre_consistent: bool | None
    designs: tuple[DesignResult, ...]
    reproduced_by: tuple[str, ...]
    paired_r: float | None
    paired_r_low: float | None
    paired_r_high: float | None
    independent_n: float | None
    independent_n_low: float | None
    independent_n_high: float | None
    findings: tuple[str, ...]
    summary: OutcomeSummary = field(repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON (the parsed ``summary`` left out: its numbers are here)."""
        data = asdict(self)
        data.pop("summary")
        return data

    def design(self, name: str) -> DesignResult | None:
        return next((d for d in self.designs if d.design == name), None)


def _t_crit(df: float | np.ndarray, confidence: float) -> Any:
    return stats.t.ppf(0.5 + confidence / 2, df)


def _sd_box(sd: Reported) -> np.ndarray:
    low, high = sd.interval
    return np.linspace(max(low, 0.0), high, _GRID)


def _independent_se_df(design: str, sa: np.ndarray, sb: np.ndarray, na: int,
                       nb: int) -> tuple[np.ndarray, np.ndarray]:
    va, vb = sa**2, sb**2
    if design == STUDENT:
        pooled = ((na - 1) * va + (nb - 1) * vb) / (na + nb - 2)
        return np.sqrt(pooled * (1 / na + 1 / nb)), np.full_like(pooled, na + nb - 2.0)
    wa, wb = va / na, vb / nb
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (wa + wb) ** 2 / (wa**2 / (na - 1) + wb**2 / (nb - 1))
    return np.sqrt(wa + wb), df


def _ci_attainable(d_range: tuple[float, float], h_range: tuple[float, float],
                   low: Reported, high: Reported) -> bool:
    """Whether some difference D and half-width h in their ranges give D − h and D + h within
    the rounding of the published ends: a two-variable linear feasibility problem."""
    lo_l, lo_h = low.interval
    hi_l, hi_h = high.interval
    s = _FEASIBILITY_SLACK * max(1.0, abs(low.value), abs(high.value))
    # variables (D, h): -D + h <= -lo_l, D - h <= lo_h, -D - h <= -hi_l, D + h <= hi_h
    a_ub = [[-1, 1], [1, -1], [-1, -1], [1, 1]]
    b_ub = [-lo_l + s, lo_h + s, -hi_l + s, hi_h + s]
    bounds = [(d_range[0] - s, d_range[1] + s), (h_range[0] - s, h_range[1] + s)]
    result = optimize.linprog([0, 0], A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    return bool(result.status == 0)


def _p_range(d_range: tuple[float, float], se: np.ndarray, df: np.ndarray) -> tuple[float, float]:
    """Smallest and largest two-sided P for D in ``d_range`` and (SE, df) on the grid."""
    d_low, d_high = d_range
    largest_d = max(abs(d_low), abs(d_high))
    smallest_d = 0.0 if d_low <= 0 <= d_high else min(abs(d_low), abs(d_high))
    ok = se > 0
    if not ok.any():
        return math.nan, math.nan
    p_min = 2 * stats.t.sf(largest_d / se[ok], df[ok])
    p_max = 2 * stats.t.sf(smallest_d / se[ok], df[ok])
    return float(np.min(p_min)), float(np.max(p_max))


def paired_r_for_half_width(half_width: float, sd_a: float, sd_b: float, n: int, *,
                            confidence: float = 0.95) -> float:
    """The within-case correlation r for which a paired t CI over ``n`` pairs has
    ``half_width``: SD_d = half_width·sqrt(n)/t_{n−1}, r = (sd_a² + sd_b² − SD_d²) /
    (2·sd_a·sd_b). Not clipped: |r| > 1 means no paired design gives that width."""
    if sd_a <= 0 or sd_b <= 0:
        raise StatsError("the within-case correlation needs both SDs > 0")
    sd_d = half_width * math.sqrt(n) / float(_t_crit(n - 1, confidence))
    return (sd_a**2 + sd_b**2 - sd_d**2) / (2 * sd_a * sd_b)


def independent_n_for_half_width(half_width: float, sd_a: float, sd_b: float, *,
                                 confidence: float = 0.95) -> float:
    """The n per arm (real, equal arms) for which Student's CI has ``half_width``:
    t_{2n−2}·sqrt((sd_a² + sd_b²)/n) = half_width, solved for n ≥ 2."""
    if half_width <= 0 or sd_a**2 + sd_b**2 == 0:
        raise StatsError("needs a positive CI width and an SD > 0")
    variance = sd_a**2 + sd_b**2

    def gap(n: float) -> float:
        return float(_t_crit(2 * n - 2, confidence)) * math.sqrt(variance / n) - half_width

    if gap(2.0) <= 0:
        return 2.0
    high = 4.0
    while gap(high) > 0:
        high *= 4
    return float(optimize.brentq(gap, 2.0, high, xtol=1e-10, rtol=1e-13))


def _design_result(design: str, summary: OutcomeSummary, *, difference: float, se: float,
                   df: float, d_range: tuple[float, float], h_range: tuple[float, float],
                   p_range: tuple[float, float], confidence: float, r: float | None = None,
                   sd_difference: float | None = None) -> DesignResult:
    t = difference / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(_t_crit(df, confidence)) * se
    low, high = difference - half, difference + half
    exact = reproduces = offset_low = offset_high = None
    if summary.published_ci is not None:
        pub_low, pub_high = summary.published_ci
        exact = pub_low.rounds_to(low) and pub_high.rounds_to(high)
        reproduces = exact or _ci_attainable(d_range, h_range, pub_low, pub_high)
        offset_low, offset_high = low - pub_low.value, high - pub_high.value
    p_ok = None
    if summary.published_p is not None:
        p_ok = summary.published_p.holds(p) or summary.published_p.holds_somewhere(*p_range)
    return DesignResult(
        design=design, label=DESIGN_LABELS[design], difference=difference, se=se, df=df, t=t,
        ci_low=low, ci_high=high, p=p, p_low=p_range[0], p_high=p_range[1], ci_exact=exact,
        ci_reproduces=reproduces, ci_low_offset=offset_low, ci_high_offset=offset_high,
        p_reproduces=p_ok, r=r, sd_difference=sd_difference)


def check_outcome(summary: OutcomeSummary, *, confidence: float = 0.95) -> OutcomeCheck:
    """Recompute one outcome under each design and compare it with the publication."""
    a, b = summary.first, summary.second
    ma, mb, sa, sb = a.mean.value, b.mean.value, a.sd.value, b.sd.value
    na, nb = a.n, b.n
    # In decimal, so 4.37 − 4.11 is 0.26, not 0.2599999999999998.
    mean_difference = float(Decimal(a.mean.text) - Decimal(b.mean.text))
    half_units = Decimal(a.mean.half_unit_text) + Decimal(b.mean.half_unit_text)
    d_range = (float(Decimal(a.mean.text) - Decimal(b.mean.text) - half_units),
               float(Decimal(a.mean.text) - Decimal(b.mean.text) + half_units))
    grid_a, grid_b = np.meshgrid(_sd_box(a.sd), _sd_box(b.sd))
    grid_a, grid_b = grid_a.ravel(), grid_b.ravel()
    ci = summary.published_ci
    half_pub = centre = None
    if ci is not None:
        centre = (ci[0].value + ci[1].value) / 2
        half_pub = (ci[1].value - ci[0].value) / 2
        half_slack = (ci[0].half_unit + ci[1].half_unit) / 2

    designs: list[DesignResult] = []
    for design in (STUDENT, WELCH):
        try:
            nominal = compare_groups_from_summary(ma, sa, na, mb, sb, nb,
                                                  equal_var=design == STUDENT,
                                                  confidence=confidence)
        except StatsError as exc:
            raise StatsError(f"outcome {summary.outcome!r}: {exc}") from None
        se_grid, df_grid = _independent_se_df(design, grid_a, grid_b, na, nb)
        ok = se_grid > 0
        halves = _t_crit(df_grid[ok], confidence) * se_grid[ok]
        designs.append(_design_result(
            design, summary, difference=mean_difference, se=nominal.se, df=nominal.df,
            d_range=d_range, h_range=(float(halves.min()), float(halves.max())),
            p_range=_p_range(d_range, se_grid, df_grid), confidence=confidence))

    r = r_low = r_high = n_ind = n_low = n_high = None
    if ci is not None and half_pub is not None and half_pub > 0:
        halves_pub = (half_pub - half_slack, half_pub + half_slack)
        if na == nb and sa > 0 and sb > 0:
            r = paired_r_for_half_width(half_pub, sa, sb, na, confidence=confidence)
            rs = [paired_r_for_half_width(h, x, y, na, confidence=confidence)
                  for h in halves_pub if h > 0
                  for x, y in zip(grid_a, grid_b, strict=True) if x > 0 and y > 0]
            r_low, r_high = min(rs), max(rs)
            if -1 <= r <= 1:
                sd_d = math.sqrt(max(sa**2 + sb**2 - 2 * r * sa * sb, 0.0))
                se = sd_d / math.sqrt(na)
                if se > 0:
                    df = float(na - 1)
                    designs.append(_design_result(
                        PAIRED, summary, difference=mean_difference, se=se, df=df,
                        d_range=d_range,
                        h_range=(half_pub, half_pub),
                        p_range=_p_range(d_range, np.array([se]), np.array([df])),
                        confidence=confidence, r=r, sd_difference=sd_d))
        if sa**2 + sb**2 > 0:
            n_ind = independent_n_for_half_width(half_pub, sa, sb, confidence=confidence)
            corners = [(x, y) for x in a.sd.interval for y in b.sd.interval
                       if x**2 + y**2 > 0]
            ns = [independent_n_for_half_width(h, max(x, 0.0), max(y, 0.0),
                                               confidence=confidence)
                  for h in halves_pub if h > 0 for x, y in corners]
            n_low, n_high = min(ns), max(ns)

    difference_consistent = centre_consistent = None
    if summary.published_difference is not None:
        lo, hi = summary.published_difference.interval
        difference_consistent = lo <= d_range[1] and hi >= d_range[0]
    if centre is not None:
        centre_consistent = (centre - half_slack <= d_range[1]
                             and centre + half_slack >= d_range[0])

    check = OutcomeCheck(
        outcome=summary.outcome, unit=summary.unit, direction=summary.direction,
        arm_a=a.name, arm_b=b.name, n_a=na, n_b=nb, mean_a=ma, mean_b=mb, sd_a=sa, sd_b=sb,
        published_difference=(summary.published_difference.text
                              if summary.published_difference else None),
        published_ci_low=ci[0].text if ci else None,
        published_ci_high=ci[1].text if ci else None,
        published_p=summary.published_p.text if summary.published_p else None,
        confidence=confidence, mean_difference=mean_difference, mean_difference_low=d_range[0],
        mean_difference_high=d_range[1], difference_consistent=difference_consistent,
        ci_centre=centre, ci_half_width=half_pub, centre_consistent=centre_consistent,
        designs=tuple(designs),
        reproduced_by=tuple(d.design for d in designs if d.ci_reproduces),
        paired_r=r, paired_r_low=r_low, paired_r_high=r_high, independent_n=n_ind,
        independent_n_low=n_low, independent_n_high=n_high, findings=(), summary=summary)
    return replace(check, findings=_findings(check, summary))


def check_published(summaries: Iterable[OutcomeSummary], *,
                    confidence: float = 0.95) -> list[OutcomeCheck]:
    """:func:`check_outcome` for every outcome, in order."""
    return [check_outcome(s, confidence=confidence) for s in summaries]


# --------------------------------------------------------------------------------------------
# Findings in words
# --------------------------------------------------------------------------------------------

def _num(x: float, like: Reported | None, extra: int = 0) -> str:
    return like.format(x, extra) if like is not None else f"{x:.4g}"


def _centre(x: float, like: Reported) -> str:
    """A CI centre: one more decimal than the ends, dropped when it is 0 (0.244, 27.15)."""
    text = like.format(x, 1)
    return text[:-1] if text.endswith("0") and "." in text[:-1] else text


def _findings(check: OutcomeCheck, summary: OutcomeSummary) -> tuple[str, ...]:
    """The outcome's check in sentences, for the report."""
    findings: list[str] = []
    a, b = summary.first, summary.second
    diff_like = summary.published_difference or Reported.parse(
        f"{check.mean_difference:.{max(a.mean.decimals, b.mean.decimals)}f}")
    span = (f"{_num(check.mean_difference_low, diff_like, 1)} to "
            f"{_num(check.mean_difference_high, diff_like, 1)}")
    means = (f"{a.mean.text} − {b.mean.text} = {_num(check.mean_difference, diff_like)} "
             f"({span} for means that round to the published ones)")
    ci = summary.published_ci
    if summary.published_difference is not None:
        verdict = "consistent" if check.difference_consistent else "NOT consistent"
        findings.append(f"Published difference {summary.published_difference.text} vs the "
                        f"means: {means}: {verdict}.")
    if ci is not None and check.ci_centre is not None:
        centre = _centre(check.ci_centre, ci[0])
        if check.centre_consistent:
            findings.append(f"The CI is centred on {centre}, within {span}, the difference "
                            "of means that round to the published ones.")
        else:
            also = ""
            if (summary.published_difference is not None
                    and summary.published_difference.interval[0] <= check.ci_centre
                    <= summary.published_difference.interval[1]):
                also = (f"; the published difference {summary.published_difference.text} "
                        "matches the CI centre, not the means")
            findings.append(
                f"The CI is centred on {centre} (the implied difference), outside {span}, the "
                f"difference of any means that round to the published ones{also}. So the CI "
                "is not centred on the difference of the published arm means: other data, "
                "another estimator or a typo; no choice of design explains it.")
        width = _num(2 * check.ci_half_width, ci[0]) if check.ci_half_width is not None else ""
        for design in check.designs:
            if design.design == PAIRED:
                continue
            own = _num(design.ci_high - design.ci_low, ci[0])
            if design.ci_exact:
                findings.append(f"{design.label}: reproduces the CI exactly.")
            elif design.ci_reproduces:
                findings.append(
                    f"{design.label}: reproduces the CI within the rounding of the means and "
                    f"SDs (from them as published: {_num(design.ci_low, ci[0])} to "
                    f"{_num(design.ci_high, ci[1])}, width {own} vs {width}).")
            else:
                findings.append(
                    f"{design.label}: does NOT reproduce the CI: {_num(design.ci_low, ci[0])} "
                    f"to {_num(design.ci_high, ci[1])}, width {own} vs the published {width}.")
        if check.paired_r is not None:
            rng = f"{check.paired_r_low:.3f} to {check.paired_r_high:.3f}"
            if -1 <= check.paired_r <= 1:
                paired = check.design(PAIRED)
                sd_d = f"; SD of the differences {paired.sd_difference:.4g}" if paired else ""
                findings.append(
                    f"A paired design over {check.n_a} cases gives the published width with a "
                    f"within-case correlation r = {check.paired_r:.3f} ({rng} for CI ends and "
                    f"SDs within their rounding){sd_d}.")
            else:
                findings.append(
                    f"No paired design over {check.n_a} cases gives the published width: it "
                    f"would need r = {check.paired_r:.3f}, outside -1 to 1.")
        elif check.n_a != check.n_b:
            findings.append("No paired design: the arms have different n (a paired design "
                            "reads the same cases in both arms).")
        if check.independent_n is not None:
            findings.append(
                f"An independent (Student) design gives that width with n = "
                f"{check.independent_n:.1f} per arm ({check.independent_n_low:.1f} to "
                f"{check.independent_n_high:.1f}), against {check.n_a} and {check.n_b} "
                "published.")
    elif ci is None:
        findings.append("No CI published: recomputed only.")
    if summary.published_p is not None:
        ok = [d.label for d in check.designs if d.p_reproduces]
        not_ok = [f"{d.label} (P = {d.p:.2g})" for d in check.designs if not d.p_reproduces]
        if not_ok:
            findings.append(f"P {summary.published_p.text} is NOT reproduced by "
                            + "; ".join(not_ok)
                            + (f"; it is by {'; '.join(ok)}." if ok else "."))
        else:
            findings.append(f"P {summary.published_p.text} is reproduced by every design.")
    return tuple(findings)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def _yes_no(value: bool | None, exact: bool | None = None) -> str:
    if value is None:
        return "-"
    if not value:
        return "no"
    return "yes" if exact or exact is None else "yes (rounding)"


def _p_text(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _design_note(design: DesignResult, check: OutcomeCheck) -> str:
    notes = []
    if design.r is not None:
        notes.append(f"r = {design.r:.3f}, SD_d = {design.sd_difference:.4g}")
    if design.ci_reproduces is False and check.ci_half_width is not None:
        own = (design.ci_high - design.ci_low) / 2
        if design.design != PAIRED:
            notes.append(f"half-width {own:.4g} vs {check.ci_half_width:.4g}")
        if check.centre_consistent is False:
            notes.append(f"centre {check.ci_centre:.4g} vs {check.mean_difference:.4g}")
    if design.p_reproduces is False:
        notes.append(f"P {_p_text(design.p)} vs {check.published_p}")
    return "; ".join(notes)


def table_rows(checks: Sequence[OutcomeCheck]) -> list[list[str]]:
    """The stdout table's cells (header first): one row per outcome and design."""
    rows = [["outcome", "published (95% CI), P", "design", "recomputed (95% CI), P",
             "CI reproduces", "P reproduces", "note"]]
    for check in checks:
        summary = check.summary
        ci = summary.published_ci
        pub = summary.published_difference.text if summary.published_difference else "-"
        if ci:
            pub += f" ({ci[0].text} to {ci[1].text})"
        if summary.published_p:
            pub += f", P {summary.published_p.text}"
        diff_like = summary.published_difference
        for i, design in enumerate(check.designs):
            if ci:
                recomputed = (f"{_num(design.difference, diff_like or ci[0])} "
                              f"({_num(design.ci_low, ci[0])} to {_num(design.ci_high, ci[1])})")
            else:
                recomputed = (f"{_num(design.difference, diff_like)} "
                              f"({design.ci_low:.4g} to {design.ci_high:.4g})")
            recomputed += f", P {_p_text(design.p)}"
            rows.append([
                f"{check.outcome} ({check.unit})" if i == 0 and check.unit
                else (check.outcome if i == 0 else ""),
                pub if i == 0 else "", design.label, recomputed,
                _yes_no(design.ci_reproduces, design.ci_exact), _yes_no(design.p_reproduces),
                _design_note(design, check)])
    return rows


def format_report(checks: Sequence[OutcomeCheck], *, source: str = "") -> str:
    """The readable report: the table, then the findings of each outcome, then the rule."""
    rows = table_rows(checks)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    if source:
        lines.append(f"Published results checked against their summary statistics: {source}")
        lines.append("")
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("CI reproduces: yes = exactly, from the means and SDs as published; "
                 "yes (rounding) = from means and SDs within their published rounding; "
                 "see the rule below.")
    lines.append("")
    for check in checks:
        reproduced = ", ".join(DESIGN_LABELS[d] for d in check.reproduced_by) or "none"
        lines.append(f"{check.outcome}: {check.direction}, n = {check.n_a} and {check.n_b}; "
                     f"CI reproduced by: {reproduced}")
        lines.extend(f"  - {finding}" for finding in check.findings)
        lines.append("")
    lines.append("Rule: " + RULE)
    return "\n".join(lines) + "\n"


CSV_COLUMNS: tuple[str, ...] = (
    "outcome", "unit", "direction", "arm_a", "arm_b", "n_a", "n_b", "mean_a", "mean_b", "sd_a",
    "sd_b", "published_difference", "published_ci_low", "published_ci_high", "published_p",
    "mean_difference", "mean_difference_low", "mean_difference_high",
    "difference_consistent", "ci_centre", "centre_consistent", "design", "difference", "se",
    "df", "t", "ci_low", "ci_high", "p", "ci_exact", "ci_reproduces", "ci_low_offset",
    "ci_high_offset", "p_reproduces", "r", "sd_difference", "paired_r", "paired_r_low",
    "paired_r_high", "independent_n", "independent_n_low", "independent_n_high",
)


def csv_rows(checks: Sequence[OutcomeCheck]) -> list[dict[str, Any]]:
    """One flat row per outcome and design (columns :data:`CSV_COLUMNS`); published numbers
    are kept as printed (text)."""
    rows = []
    for check in checks:
        outcome = check.as_dict()
        for design in check.designs:
            row = {**outcome, **asdict(design)}
            rows.append({c: row.get(c) for c in CSV_COLUMNS})
    return rows


def _plain(value: Any) -> Any:
    """NaN and infinities as None, recursively: what strict JSON can hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def report_dict(checks: Sequence[OutcomeCheck], *, source: str = "") -> dict[str, Any]:
    """The JSON report: the source file, the rule, the designs and every outcome's check."""
    return _plain({
        "source": source, "confidence": checks[0].confidence if checks else 0.95,
        "rule": RULE, "designs": DESIGN_LABELS,
        "outcomes": [check.as_dict() for check in checks],
    })
