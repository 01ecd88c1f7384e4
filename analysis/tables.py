"""The report's results tables, from the summary: the same rows go to CSV, HTML and the PDF.

Numbers are rounded as the reference trial reports them (means and differences of scores to 2
decimals, their CIs to 3; times to 0.1 s, their CIs to 2 decimals; P as "< 0.001" below that)
and arms and sources are named as the trial names them, never by their codes. Every estimate
carries its basis: pre-specified by the signed analysis plan, or exploratory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.summary import AI, ARMS, METHOD_LABELS, SCP


@dataclass
class Table:
    """A results table: the same rows go to CSV, HTML and the PDF."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


Names = dict[str, str]


def source_name(code: Any, names: Names) -> str:
    """What the report calls an arm or a source (``names``: the trial's arm labels)."""
    code = str(code)
    if code in names:
        return names[code]
    if code.startswith("model:"):
        return f"model {code.removeprefix('model:')}"
    return {"ai_alone": "AI draft alone", "published": "published report"}.get(code, code)


def comparison_name(key: str, names: Names) -> str:
    """"prospective: ai_assisted vs scp" -> "AI-assisted vs SCP" (the kind is the section's)."""
    _kind, _, pair = key.partition(": ")
    a, _, b = (pair or key).partition(" vs ")
    return f"{source_name(a, names)} vs {source_name(b, names)}"


def f(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def p_value(p: Any) -> str:
    if p is None:
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def msd(d: dict, digits: int = 2) -> str:
    if not d.get("available"):
        return "n/a"
    return f"{f(d['mean'], digits)} ± {f(d['sd'], digits)}"


def na(entry: dict) -> str:
    return f"not available: {entry.get('reason', '')}"


def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f}%)" if d else f"{n}/0"


def ci(low: Any, high: Any, digits: int) -> str:
    return f"{f(low, digits)} to {f(high, digits)}"


def level(confidence: float) -> str:
    """A confidence level as the tables print it: 0.95 -> "95%", 0.9 -> "90%", 0.999 ->
    "99.9%" (1 − the analysis plan's alpha, which may be any value from 0.001 to 0.2)."""
    return f"{round(100 * float(confidence), 4):g}%"


def ci_header(summary: dict) -> str:
    """The CI column's header at the analysis' confidence level (1 − the plan's alpha)."""
    return f"{level(summary.get('confidence', 0.95))} CI"


def _entries_level(entries: Any, default: float | None) -> str:
    """The level of a table of results that carry their own ``confidence`` (else ``default``,
    else 95%)."""
    if default is None:
        default = next((e["confidence"] for e in entries
                        if isinstance(e, dict) and e.get("confidence") is not None), 0.95)
    return level(default)


# --------------------------------------------------------------------------------------------
# Table 1: the reference trial's layout
# --------------------------------------------------------------------------------------------

def _primary_method(summary: dict) -> str:
    plan = summary.get("plan")
    return plan["primary_method"] if plan else "student"


def table1(summary: dict, names: Names) -> Table:
    """Quality, agreement, reading time and preference per arm, the difference, its CI and P,
    by the plan's primary method (Student's t as published when there is no plan)."""
    method = _primary_method(summary)
    conf = ci_header(summary)
    columns = ["outcome", f"{names[SCP]}, mean ± SD", f"{names[AI]}, mean ± SD",
               "difference", conf, "P", "analysis", "basis"]
    rows: list[list[str]] = []
    for name, title in (("quality", "Quality score (Likert 1-5)"),
                        ("agreement", "Agreement score (RADPEER 1-5)")):
        entry = summary["outcomes"][name]
        if not entry.get("available"):
            rows.append([title, "", "", na(entry), "", "", "", ""])
            continue
        per_arm = entry["per_arm"]
        c = entry.get(method, {})
        basis = entry.get("basis", {}).get(method, "")
        if not c.get("available"):
            rows.append([title, msd(per_arm[SCP]), msd(per_arm[AI]), na(c), "", "",
                         METHOD_LABELS[method], basis])
            continue
        diff = c["effect"] if c.get("effect") is not None else c["difference"]
        rows.append([title, msd(per_arm[SCP]), msd(per_arm[AI]), f(diff, 2),
                     ci(c["ci_low"], c["ci_high"], 3), p_value(c["p"]), METHOD_LABELS[method],
                     basis])
    times = summary["reading_time"]
    title = "Reading time, s"
    overall = times.get("overall", {}) if times.get("available") else times
    if not overall.get("available"):
        rows.append([title, "", "", na(overall), "", "", "", ""])
    else:
        c = overall.get(method, {})
        basis = times.get("basis", {}).get(method, "")
        per_arm = overall["per_arm"]
        if not c.get("available"):
            rows.append([title, msd(per_arm[SCP], 1), msd(per_arm[AI], 1), na(c), "", "",
                         METHOD_LABELS[method], basis])
        else:
            diff = c["effect"] if c.get("effect") is not None else c["difference"]
            reduction = overall.get("reduction_percent")
            text = f"{f(diff, 1)} s" + (f" ({f(reduction, 1)}% reduction)"
                                        if reduction is not None else "")
            rows.append([title, msd(per_arm[SCP], 1), msd(per_arm[AI], 1), text,
                         ci(c["ci_low"], c["ci_high"], 2), p_value(c["p"]),
                         METHOD_LABELS[method], basis])
    pref = summary["preference"]
    entries = [(k, c) for k, c in pref.get("comparisons", {}).items()
               if c.get("available") and {c.get("a"), c.get("b")} == set(ARMS)]
    for _key, c in entries:
        # AI-assisted is A in practice (the comparison's first report); B's own share and CI
        # otherwise: with ties (an even panel) B's share is not 1 - A's.
        share, low, high = ((c["share"], c["ci_low"], c["ci_high"]) if c["a"] == AI else
                            (c["share_b"], c["ci_b_low"], c["ci_b_high"]))
        ties = c.get("n_ties", 0)
        rows.append([f"Preference for {names[AI]} (% of cases, majority of raters)", "", "",
                     f"{100 * share:.1f}% of {c['n_cases']} cases"
                     + (f" ({ties} tied)" if ties else ""),
                     f"{100 * low:.1f}% to {100 * high:.1f}%",
                     p_value(c["p"]), "majority of raters vs 50% (exact binomial sign test)",
                     pref.get("basis", "")])
    if not entries:
        rows.append(["Preference", "", "", na(pref) if not pref.get("available")
                     else "no AI-assisted vs SCP comparison", "", "", "", ""])
    campaign = summary.get("primary_campaign", {})
    note = (f"Ratings of the primary campaign ({campaign.get('name') or '-'}: "
            f"{campaign.get('why', '')}). Differences are {names[AI]} − {names[SCP]} for "
            f"scores and {names[SCP]} − {names[AI]} for reading time (the reduction).")
    return Table("table1", "Table 1. Primary outcomes", columns, rows, note)


# --------------------------------------------------------------------------------------------
# Detailed tables
# --------------------------------------------------------------------------------------------

def _comparison_row(outcome: str, method: str, c: dict, names: Names, basis: str, *,
                    time: bool = False) -> list[str]:
    label = METHOD_LABELS[method]
    if not c.get("available"):
        return [outcome, label, "", "", na(c), "", "", basis]
    digits, ci_digits = (1, 2) if time else (2, 3)
    if c.get("effect") is not None:  # mixed model: no per-arm means of its own
        return [outcome, label, "", "", f(c["effect"], digits),
                ci(c["ci_low"], c["ci_high"], ci_digits), p_value(c["p"]), basis]
    first, second = (SCP, AI) if time else (AI, SCP)
    means = {first: (c["mean_a"], c["sd_a"], c["n_a"]), second: (c["mean_b"], c["sd_b"],
                                                                 c["n_b"])}

    def cell(arm: str) -> str:
        m, s, n = means[arm]
        return f"{f(m, digits)} ± {f(s, digits)} (n={n})"

    return [outcome, label, cell(SCP), cell(AI), f(c["difference"], digits),
            ci(c["ci_low"], c["ci_high"], ci_digits), p_value(c["p"]), basis]


def outcomes_table(summary: dict, names: Names, *, name: str = "outcomes",
                   title: str = "Primary outcomes by every method",
                   outcomes: dict | None = None, with_time: bool = True) -> Table:
    """Each outcome by Student, Welch, paired and mixed-model analyses, each with its basis."""
    columns = ["outcome", "analysis", names[SCP], names[AI], "difference", ci_header(summary),
               "P", "basis"]
    rows: list[list[str]] = []
    for outcome, entry in (outcomes if outcomes is not None else summary["outcomes"]).items():
        if not entry.get("available"):
            rows.append([outcome, "-", "", "", na(entry), "", "", ""])
            continue
        for method in ("student", "welch", "paired", "mixed_model"):
            rows.append(_comparison_row(outcome, method, entry[method], names,
                                        entry.get("basis", {}).get(method, "")))
    times = summary["reading_time"]
    if with_time and not times.get("available"):
        rows.append(["reading time, s", "-", "", "", na(times), "", "", ""])
    elif with_time:
        for part, label in (("overall", "reading time, s"),
                            ("complex_cases", "reading time, complex cases, s")):
            entry = times[part]
            if not entry.get("available"):
                rows.append([label, "-", "", "", na(entry), "", "", ""])
                continue
            for method in ("student", "welch", "paired", "mixed_model"):
                if method not in entry:
                    continue
                basis = (times.get("basis", {}).get(method, "") if part == "overall"
                         else times.get("complex_cases_basis", ""))
                row = _comparison_row(label, method, entry[method], names, basis, time=True)
                if method == "student" and entry.get("reduction_percent") is not None:
                    row[4] += f" ({f(entry['reduction_percent'], 1)}% reduction)"
                rows.append(row)
    return Table(name, title, columns, rows,
                 f"Scores: {names[AI]} − {names[SCP]} over per-report mean scores; reading "
                 f"time: {names[SCP]} − {names[AI]} (the reduction). Mixed model: reader, case "
                 "and rater random effects (reading time: reader and case), REML.")


def kendall_table(kendall: dict, names: Names, *, name: str = "kendall",
                  title: str = "Agreement between raters: Kendall's W") -> Table:
    rows = []
    for outcome, per_arm in kendall.items():
        if "available" in per_arm and not per_arm["available"]:
            rows.append([outcome, "-", na(per_arm), "", "", "", "", ""])
            continue
        for arm, k in per_arm.items():
            if not k.get("available"):
                rows.append([outcome, source_name(arm, names), na(k), "", "", "", "", ""])
            else:
                rows.append([outcome, source_name(arm, names), f(k["w"], 3), k["band"],
                             f(k["chi2"], 1), str(k["df"]), p_value(k["p"]),
                             f"{k['n_raters']} x {k['n_items']}"])
    return Table(name, title, ["outcome", "arm", "W", "band", "chi²", "df", "P",
                               "raters x reports"], rows,
                 "Tie-corrected W; chi-square test on n − 1 df.")


def preference_table(pref: dict, names: Names, *, name: str = "preference",
                     title: str = "Pairwise preference", confidence: float | None = None) -> Table:
    """Per comparison: the cases a majority preferred A (with its CI), B, and the ties; the
    sign test's P (ties left out); the pooled votes (labelled: they ignore clustering)."""
    comparisons = pref.get("comparisons", {}) if pref.get("available") else {}
    columns = ["comparison", "cases", "A preferred by a majority",
               f"{_entries_level(comparisons.values(), confidence)} CI",
               "B preferred by a majority", "ties (no majority)", "P (vs 50%)",
               "pooled votes for A", "basis"]
    if not pref.get("available"):
        return Table(name, title, columns, [["-", na(pref), "", "", "", "", "", "", ""]])
    rows = []
    for key, c in comparisons.items():
        label = comparison_name(key, names)
        if not c.get("available"):
            rows.append([label, na(c), "", "", "", "", "", "", ""])
            continue
        rows.append([label, str(c["n_cases"]),
                     f"{c['n_cases_preferred']} ({100 * c['share']:.1f}%, >= {c['threshold']} "
                     f"of {c['n_raters']})",
                     f"{100 * c['ci_low']:.1f}% to {100 * c['ci_high']:.1f}%",
                     f"{c['n_cases_preferred_b']} ({100 * c['share_b']:.1f}%)",
                     str(c["n_ties"]),
                     p_value(c["p"]) if c.get("p") is not None else c.get("p_note") or "-",
                     f"{100 * c['vote_share']:.1f}% of {c['votes_total']}",
                     pref.get("basis", "")])
    return Table(name, title, columns, rows,
                 "A is the first report named, B the second. A case counts for the report a "
                 "strict majority of its raters preferred; a tie (possible with an even number "
                 "of raters) counts for neither. Shares are over every case, ties included; P "
                 "is the exact binomial sign test of the cases for A out of the cases with a "
                 "majority (ties left out) against 50%. Pooled votes ignore clustering within "
                 "cases and raters.")


def positive_table(summary: dict, names: Names) -> Table:
    pos = summary["positive_rates"]
    columns = ["finding", names[AI], names[SCP], "difference", f"{ci_header(summary)}", "chi²",
               "P", "Fisher P"]
    title = "Positive rate per finding per arm"
    if not pos.get("available"):
        return Table("positive_rates", title, columns, [["-", na(pos), "", "", "", "", "", ""]])
    rows = []
    for finding, c in pos["findings"].items():
        if not c.get("available"):
            rows.append([finding, na(c), "", "", "", "", "", ""])
            continue
        rows.append([finding, pct(c["x_a"], c["n_a"]), pct(c["x_b"], c["n_b"]),
                     f"{100 * c['difference']:.1f} pts",
                     f"{100 * c['ci_low']:.1f} to {100 * c['ci_high']:.1f}",
                     f(c["chi2"], 2), p_value(c["chi2_p"]), p_value(c["fisher_p"])])
    return Table("positive_rates", title, columns, rows,
                 f"Share of submitted readings ticking the finding; difference CI: Newcombe's "
                 f"hybrid score interval; Pearson chi-square. "
                 f"Basis: {pos.get('basis', '')}.")


def flow_table(flow: dict, names: Names) -> Table:
    rows = [["Screened", str(flow["screened"])], ["Excluded", str(flow["excluded"])]]
    rows += [[f"  excluded: {reason}", str(n)] for reason, n in
             flow["exclusion_reasons"].items()]
    rows += [["Awaiting screening", str(flow["awaiting_screening"])],
             ["Enrolled", str(flow["enrolled"])], ["Withdrawn", str(flow["withdrawn"])]]
    rows += [[f"Read, {source_name(arm, names)}", str(n)]
             for arm, n in flow["read_per_arm"].items()]
    rows += [["Read in both arms", str(flow["read_both_arms"])]]
    rows += [[f"Rated, {source_name(arm, names)}", str(n)]
             for arm, n in flow["rated_per_arm"].items()]
    rows += [["Rated in both arms", str(flow["rated_both_arms"])],
             ["Raters", str(flow["raters"])], ["Rating submissions", str(flow["ratings"])]]
    return Table("flow", "Participant flow (CONSORT)", ["stage", "cases"], rows)


def baseline_table(baseline: dict) -> Table:
    title = "Baseline characteristics"
    if not baseline.get("available"):
        return Table("baseline", title, ["characteristic", "value"], [["-", na(baseline)]])
    rows = [["Enrolled cases", str(baseline["n"])],
            ["Age, mean ± SD", msd(baseline["age"], 1)]]
    for label, key in (("Age", "age_classes"), ("Sex", "sex"), ("Site", "sites")):
        rows += [[f"{label}: {k}", f"{v['n']} ({f(v['percent'], 1)}%)"]
                 for k, v in baseline[key].items()]
    prevalence = baseline["finding_prevalence"]
    if prevalence.get("available", True):
        rows += [[f"Finding: {k}", f"{v['n']} ({f(v['percent'], 1)}%)"]
                 for k, v in prevalence.items()]
    return Table("baseline", title, ["characteristic", "value"], rows,
                 "Finding prevalence: share of read cases where any reader ticked the finding.")


def subgroup_table(summary: dict, names: Names) -> Table:
    conf = ci_header(summary)
    columns = ["subgroup", "cases", "outcome", "difference", conf, "P", "basis"]
    rows: list[list[str]] = []
    for label, entry in summary.get("subgroups", {}).items():
        for outcome, title, digits in (("quality", "quality", 2), ("agreement", "agreement", 2),
                                       ("reading_time", "reading time, s", 1)):
            c = entry[outcome]
            if not c.get("available"):
                rows.append([label, str(entry["n_cases"]), title, na(c), "", "",
                             c.get("basis", "")])
                continue
            rows.append([label, str(entry["n_cases"]), title, f(c["difference"], digits),
                         ci(c["ci_low"], c["ci_high"], digits + 1), p_value(c["p"]),
                         c.get("basis", "")])
    definition = summary.get("complex_case_definition", {}).get("text", "")
    return Table("subgroups", "Subgroups", columns, rows,
                 f"Independent t-tests within each subgroup; scores {names[AI]} − "
                 f"{names[SCP]} (primary campaign), reading time {names[SCP]} − {names[AI]}."
                 + (f" {definition}" if definition else ""))


def retrospective_tables(retro: dict, ident: dict, names: Names, *, prefix: str = "",
                         kind: str = "Retrospective") -> list[Table]:
    columns = ["outcome", "source", "mean ± SD", "n", "Kendall's W", "P (W)"]
    title = f"{kind}: sources compared"
    rows = []
    if not retro.get("available"):
        rows = [["-", na(retro), "", "", "", ""]]
    else:
        for outcome in ("quality", "agreement"):
            entry = retro.get(outcome, {})
            if not entry.get("available"):
                rows.append([outcome, na(entry), "", "", "", ""])
                continue
            for source in entry["sources"]:
                k = entry["kendall"][source]
                d = entry["per_source"][source]
                rows.append([outcome, source_name(source, names), msd(d),
                             str(d.get("n", "")), f(k.get("w"), 3) if k.get("available")
                             else na(k), p_value(k.get("p"))])
            for key, label in (("anova", "one-way ANOVA"), ("welch_anova", "Welch ANOVA")):
                a = entry[key]
                rows.append([outcome, label,
                             f"F({f(a['df_between'], 0)}, {f(a['df_within'], 1)}) = "
                             f"{f(a['f'])}" if a.get("available") else na(a), "", "",
                             p_value(a.get("p"))])
    tables = [Table(f"{prefix}retrospective", title, columns, rows)]
    tables.append(source_identification_table(ident, names, name=f"{prefix}source_identification"))
    return tables


def source_identification_table(ident: dict, names: Names, *,
                                name: str = "source_identification") -> Table:
    id_rows = []
    if ident.get("available"):
        for key, c in ident["comparisons"].items():
            label = comparison_name(key, names)
            if not c.get("available"):
                id_rows.append([label, na(c), "", "", ""])
                continue
            m = c["matrix"]
            id_rows.append([label, f"model→model {m[0][0]}, model→human {m[0][1]}; "
                            f"human→model {m[1][0]}, human→human {m[1][1]}",
                            pct(c["correct"], c["n_answers"]), p_value(c["p_vs_chance"]),
                            str(len(c["accuracy_per_rater"]))])
    else:
        id_rows.append(["-", na(ident), "", "", ""])
    return Table(name, "Source identification (confusion matrix)",
                 ["comparison", "actual → called", "correct", "P (vs 50%)", "raters"], id_rows)


def blinding_table(assessment: dict, names: Names, campaigns: dict, *,
                   confidence: float | None = None) -> Table:
    """Bang's blinding index per campaign and source: how well raters guessed the source."""
    indices = [b.get("bang", b) for entry in assessment.get("campaigns", {}).values()
               for b in entry.get("per_source", {}).values()]
    columns = ["campaign", "source", "answers", "correct", "Bang's BI",
               f"{_entries_level(indices, confidence)} CI", "interpretation"]
    rows: list[list[str]] = []
    if not assessment.get("available"):
        rows.append(["-", na(assessment), "", "", "", "", ""])
    for cid, entry in assessment.get("campaigns", {}).items():
        campaign = campaigns.get(str(cid), {}).get("name", str(cid))
        if not entry.get("available"):
            rows.append([campaign, na(entry), "", "", "", "", ""])
            continue
        for source, b in entry.get("per_source", {}).items():
            bang = b.get("bang", b)
            if bang.get("bi") is None:
                rows.append([campaign, source_name(source, names), na(bang), "", "", "", ""])
                continue
            rows.append([campaign, source_name(source, names), str(bang["n"]),
                         str(bang["correct"]), f(bang["bi"], 2),
                         ci(bang["ci_low"], bang["ci_high"], 2), bang["interpretation"]])
    return Table("blinding", "Blinding assessment (source identification)", columns, rows,
                 "Bang's blinding index: (correct − incorrect) / answers; 0 is random "
                 "guessing (consistent with blinding), 1 every source identified; answers of "
                 "one rater are not independent, so the CIs are too narrow.")


def flags_table(flags: dict, names: Names, campaigns: dict) -> Table:
    columns = ["campaign", "item", "rater", "case", "report", "rule", "details"]
    rows = []
    if not flags.get("available", True):
        rows.append(["-", na(flags), "", "", "", "", ""])
    for flag in flags.get("flags", []):
        rows.append([campaigns.get(str(flag["campaign"]), {}).get("name", str(flag["campaign"])),
                     str(flag["item_code"]), str(flag["rater"]), str(flag["case"]),
                     source_name(flag.get("arm") or flag.get("source"), names),
                     str(flag["rule"]), str(flag["details"])])
    if not rows:
        rows.append(["-", "no contradictory ratings", "", "", "", "", ""])
    return Table("consistency_flags", "Rating consistency flags", columns, rows,
                 "Contradictions within one rater's rating of one report (for example RADPEER "
                 "complete agreement with a clinically significant error). Listed for the "
                 "coordinator; the raters' judgements stand and enter the analysis as given.")
