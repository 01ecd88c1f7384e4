"""The report's "Report generation metrics" section, from the trial's newest stored metrics run.

``metrics.compute`` computes and stores the automated metrics (``MetricsRun``); this module only
lays them out, so the page, the HTML report and the PDF show the numbers the run stored and
nothing is recomputed here. The layout follows the reference trial's Supplementary Appendices
4 and 5: per comparison a table like its Supplementary Table 3 (one row per source; F1-14 and
F1-5, micro and macro, RadGraph, BLEU-1, BLEU-4, ROUGE-L, each "value (low–high)"), the paired
comparisons, the per-finding scores, Cohen's kappa and ROC curves against the gold-standard
labels, the labeller validation and the LLM judge. A metric without a value is shown as the
run's "not computed: <reason>", never as a number.

Convention: F1, RadGraph, BLEU and ROUGE-L are shown x100 with one decimal (the paper's);
kappa and AUC on their 0-1 scale with three decimals; the exports keep every value on 0-1.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; the figure is a file and a data URI

from matplotlib.figure import Figure  # noqa: E402

from analysis.tables import Names, Table, p_value  # noqa: E402
from analysis.tables import level as level_text  # noqa: E402
from trial.findings import FINDINGS  # noqa: E402

TITLE = "Report generation metrics"
ANCHOR = "report-metrics"
ROC_STEM = "roc_curves"
#: Supplementary Table 3's columns, in its order, with the headers the report prints.
TABLE3 = {"f1_14_micro": "F1-14 micro", "f1_14_macro": "F1-14 macro",
          "f1_5_micro": "F1-5 micro", "f1_5_macro": "F1-5 macro", "radgraph": "RadGraph",
          "bleu1": "BLEU-1", "bleu4": "BLEU-4", "rouge_l": "ROUGE-L"}
SCALE_NOTE = ("F1, RadGraph, BLEU and ROUGE-L are shown x100 with one decimal, as in the "
              "reference trial's Supplementary Table 3: value (CI low–high).")
RULES_WARNING = ("These labels are from the RULE-BASED labeller (phrase rules with negation "
                 "and uncertainty cues), not a validated labeller such as CheXbert or an LLM "
                 "labeller: read the labeller validation below before trusting the F1 and "
                 "kappa values.")
PNG_DPI = 110  # as the report's other figures


def not_computed_text(slug: str) -> str:
    """What the section says when no run is stored, and how to make one."""
    return ("Not computed yet: no report metrics run is stored for this trial. Compute them "
            f"with manage.py report_metrics --trial {slug} --out DIR, or with the Compute "
            "report metrics button on the trial's analysis page (below).")


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------

def _reason(entry: dict[str, Any]) -> str:
    reason = str(entry.get("reason") or "not computed")
    return reason if reason.startswith("not computed") else f"not computed: {reason}"


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def scaled(entry: dict[str, Any]) -> str:
    """A metric x100 with one decimal and its CI, "76.7 (70.1–82.0)"; else its reason."""
    value = entry.get("value")
    if not _finite(value):
        return _reason(entry)
    text = f"{100 * value:.1f}"
    low, high = entry.get("ci_low"), entry.get("ci_high")
    if _finite(low) and _finite(high):
        text += f" ({100 * low:.1f}–{100 * high:.1f})"
    return text


def unit(value: Any, low: Any = None, high: Any = None, digits: int = 3) -> str:
    """A 0-1 statistic (kappa, AUC) with its CI, "0.712 (0.501–0.880)"."""
    if not _finite(value):
        return "-"
    text = f"{value:.{digits}f}"
    if _finite(low) and _finite(high):
        text += f" ({low:.{digits}f}–{high:.{digits}f})"
    return text


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}" if _finite(x) else "-"


def _label(code: str, name: str | None, names: Names) -> str:
    """The trial's arm labels for the arms, the run's name for every other source."""
    return names.get(code) or name or code


# --------------------------------------------------------------------------------------------
# The run, and its tables
# --------------------------------------------------------------------------------------------

def run_level(results: dict[str, Any]) -> str:
    """The confidence level of a run's CIs, "95%" (1 − the alpha it was computed with)."""
    return level_text(1 - float(results.get("alpha", 0.05)))


def run_lines(run: Any, alpha: float | None = None) -> list[str]:
    """Which run (date, labeller, seed, resamples) and the methods sentences; with ``alpha``
    (the signed analysis plan's), a warning when the run's CIs are at another level."""
    results = run.results
    labeller = results.get("labeller") or {}
    by = getattr(run.created_by, "username", None) if run.created_by_id else None
    level = run_level(results)
    lines = [f"Run {run.pk}, computed {run.created_at:%Y-%m-%d %H:%M} UTC"
             + (f" by {by}" if by else "") + f" in {run.seconds:.1f} s: the newest stored run "
             "of this trial (the tables below are its stored results)."]
    if labeller.get("kind") == "rules":
        lines.append(f"Labeller: rule-based — {labeller.get('description', '')}. "
                     + RULES_WARNING)
    else:
        lines.append(f"Labeller: {labeller.get('kind', '')} — "
                     f"{labeller.get('description', '')}.")
    current = getattr(run.labeller, "fingerprint", None)
    if current and current != run.fingerprint:
        lines.append("The labeller's configuration has changed since this run: compute again "
                     "for labels by its current configuration.")
    lines.append(f"Seed {run.seed}; {results.get('resamples', run.resamples)} bootstrap "
                 f"resamples, {results.get('permutations', '-')} permutations; {level} CIs.")
    if alpha is not None and not math.isclose(float(results.get("alpha", 0.05)), alpha):
        lines.append(f"This run's CIs are {level}, not the {level_text(1 - alpha)} of the "
                     f"signed analysis plan (alpha {alpha:g}): it was computed with alpha "
                     f"{float(results.get('alpha', 0.05)):g}. Compute the metrics again for "
                     "intervals at the plan's level.")
    gold = results.get("gold")
    if gold:
        lines.append(f"Gold-standard labels: {gold['name']} ({gold['provenance']}), "
                     f"{gold['cases']} cases.")
    else:
        lines.append("Kappa, ROC and the labeller validation: "
                     f"{results.get('gold_reason') or 'not computed'}.")
    lines += [f"Methods: {text}" for text in (results.get("methods") or {}).values()]
    return lines


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(key))


def table3(comparison: dict[str, Any], results: dict[str, Any], names: Names,
           level: str = "95%") -> Table:
    """One comparison as Supplementary Table 3: a row per source, a column per metric."""
    model = results.get("model_metrics") or {}
    rows = []
    for source in comparison["sources"]:
        cells = [_label(source["source"], source.get("name"), names), str(source["n"])]
        for key in TABLE3:
            fallback = model.get(key) if not (model.get(key) or {}).get("computed") else None
            entry = source["metrics"].get(key) or fallback or {
                "value": None, "reason": "not computed: not part of this run"}
            cells.append(scaled(entry))
        rows.append(cells)
    note = (SCALE_NOTE + f" CIs: {level} percentile bootstrap over cases. F1-5 findings (the "
            "5 most often positive in the reference labels): ")
    note += (", ".join(comparison["top5"]) if comparison.get("top5") else "none") + "."
    if comparison.get("labels_reason"):
        note += f" Finding metrics {comparison['labels_reason']}."
    return Table(f"metrics_table3_{_safe(comparison['key'])}",
                 f"{comparison['title']}: metrics against the "
                 f"{comparison.get('reference_name', comparison['reference'])} "
                 "(Supplementary Table 3 layout)",
                 ["source", "n", *TABLE3.values()], rows, note)


def paired_table(results: dict[str, Any], names: Names, level: str) -> Table:
    """Each pair of sources of a comparison, on their common cases: difference, CI, P."""
    headers = {**(results.get("metric_names") or {}), **TABLE3}
    rows = []
    for comparison in results["comparisons"]:
        labels = {s["source"]: _label(s["source"], s.get("name"), names)
                  for s in comparison["sources"]}
        for row in comparison["paired"]:
            diff, low, high = row.get("difference"), row.get("ci_low"), row.get("ci_high")
            rows.append([comparison["title"],
                         f"{labels.get(row['a'], row['a'])} − {labels.get(row['b'], row['b'])}",
                         headers.get(row["metric"], row["metric"]), str(row["n"]),
                         f"{100 * diff:.1f}" if _finite(diff) else "not computed",
                         f"{100 * low:.1f} to {100 * high:.1f}"
                         if _finite(low) and _finite(high) else "-",
                         p_value(row.get("p"))])
    if not rows:
        rows.append(["-", "no two sources of a comparison share two or more cases", "", "", "",
                     "", ""])
    return Table("metrics_paired", "Paired comparisons of sources",
                 ["comparison", "A − B", "metric", "cases", "difference (x100)",
                  f"{level} CI", "P"], rows,
                 "Differences on the cases both sources have, x100; paired-bootstrap CI; P "
                 "from an approximate randomisation test (the two sources swapped within "
                 "cases).")


def per_finding_table(comparison: dict[str, Any], names: Names) -> Table | None:
    """Precision, recall, F1 and positive rates per finding and source, one cell each."""
    sources = [s for s in comparison["sources"] if s.get("per_finding")]
    if not sources:
        return None
    by_source = [{row["finding"]: row for row in s["per_finding"]} for s in sources]
    rows = []
    for finding in FINDINGS:
        cells = [finding]
        for found in by_source:
            row = found.get(finding)
            cells.append("-" if row is None else
                         f"F1 {_pct(row['f1'])} · P {_pct(row['precision'])} · R "
                         f"{_pct(row['recall'])} · pos {_pct(row['positive_rate'])}% (ref "
                         f"{_pct(row['reference_positive_rate'])}%)")
        rows.append(cells)
    return Table(f"metrics_per_finding_{_safe(comparison['key'])}",
                 f"{comparison['title']}: scores per finding",
                 ["finding", *[f"{_label(s['source'], s.get('name'), names)} (n={s['n']})"
                               for s in sources]], rows,
                 "F1, precision (P) and recall (R) x100 of the source's labels against the "
                 "reference report's labels (0 where undefined); pos: share of the source's "
                 "reports positive, ref: of the reference reports.")


def _columns(rows: list[dict[str, Any]], results: dict[str, Any], names: Names,
             key: str = "source") -> list[tuple[tuple[str, str], str]]:
    """(comparison, source) pairs in first-seen order with their headers (the comparison's
    title added when a source is in several comparisons)."""
    titles = {c["key"]: c["title"] for c in results["comparisons"]}
    seen: dict[tuple[str, str], str] = {}
    for row in rows:
        pair = (row.get("comparison", ""), row[key])
        seen.setdefault(pair, _label(row[key], row.get("name"), names))
    counts: dict[str, int] = {}
    for label in seen.values():
        counts[label] = counts.get(label, 0) + 1
    return [(pair, f"{label} — {titles.get(pair[0], pair[0])}" if counts[label] > 1
             else label) for pair, label in seen.items()]


def kappa_table(results: dict[str, Any], names: Names, level: str) -> Table:
    """Cohen's kappa per finding of each source's labels against the gold-standard labels."""
    title = "Agreement with the gold-standard labels: Cohen's kappa"
    rows_in = results.get("kappa") or []
    if not rows_in:
        reason = results.get("gold_reason") or ("not computed: fewer than two gold-labelled "
                                                 "cases have labels of any source")
        return Table("metrics_kappa", title, ["finding", "kappa"], [["-", reason]])
    columns = _columns(rows_in, results, names)
    cell = {(r["comparison"], r["source"], r["finding"]): r for r in rows_in}
    n = {(r["comparison"], r["source"]): r["n"] for r in rows_in}
    rows = []
    for finding in FINDINGS:
        cells = [finding]
        for pair, _ in columns:
            row = cell.get((*pair, finding))
            if row is None:
                cells.append("-")
            elif _finite(row.get("kappa")):
                cells.append(unit(row["kappa"], row.get("ci_low"), row.get("ci_high")))
            else:
                cells.append("undefined (both label sets constant and agreeing)")
        rows.append(cells)
    return Table("metrics_kappa", title,
                 ["finding", *[f"{header} (n={n[pair]})" for pair, header in columns]], rows,
                 f"Kappa of the source's labels (by the run's labeller) against the "
                 f"gold-standard labels, with a {level} bootstrap CI over cases.")


def auc_table(results: dict[str, Any], names: Names, level: str) -> Table:
    """AUC with its DeLong CI per finding and source with imported probabilities."""
    title = "ROC AUC against the gold-standard labels"
    rows_in = results.get("roc") or []
    if not rows_in:
        reason = results.get("gold_reason") or (
            "not computed: no source has imported probabilities for gold-labelled cases "
            "(manage.py import_probabilities)")
        return Table("metrics_auc", title, ["finding", "AUC"], [["-", reason]])
    sources = list(dict.fromkeys(r["source"] for r in rows_in))
    cell = {(r["source"], r["finding"]): r for r in rows_in}
    rows = []
    for finding in FINDINGS:
        if not any((s, finding) in cell for s in sources):
            continue
        cells = [finding]
        for source in sources:
            row = cell.get((source, finding))
            if row is None:
                cells.append("-")
            elif not _finite(row.get("auc")):
                cells.append(_reason(row))
            else:
                text = unit(row["auc"], row.get("ci_low"), row.get("ci_high"))
                if row.get("reason"):
                    text += f"; CI {_reason(row)}"
                cells.append(f"{text} [{row.get('n_pos')}+/{row.get('n_neg')}−]")
        rows.append(cells)
    return Table("metrics_auc", title,
                 ["finding", *[_label(s, None, names) for s in sources]], rows,
                 f"AUC of the source's probabilities against the gold labels with a {level} "
                 "DeLong CI; [positive/negative cases].")


def roc_figure(results: dict[str, Any], names: Names) -> tuple[Figure, str] | None:
    """Small multiples, one panel per finding with a curve, one curve per source, AUC and
    its DeLong CI in the legend; with the figure's alt text (every legend in words)."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in results.get("roc") or []:
        if row.get("fpr") and row.get("tpr"):
            curves.setdefault(row["finding"], []).append(row)
    findings = [f for f in FINDINGS if f in curves]
    if not findings:
        return None
    sources = list(dict.fromkeys(r["source"] for f in findings for r in curves[f]))
    colour = {source: f"C{i % 10}" for i, source in enumerate(sources)}
    ncols = min(4, len(findings))
    nrows = math.ceil(len(findings) / ncols)
    fig = Figure(figsize=(3.1 * ncols, 3.0 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    alt = []
    for ax, finding in zip(axes.flat, findings, strict=False):
        ax.plot([0, 1], [0, 1], linestyle="--", linewidth=0.7, color="#999999")
        described = []
        for row in curves[finding]:
            label = _label(row["source"], None, names)
            auc = unit(row.get("auc"), row.get("ci_low"), row.get("ci_high"))
            if not _finite(row.get("ci_low")):
                auc += " (no CI)"
            ax.plot(row["fpr"], row["tpr"], color=colour[row["source"]], linewidth=1.3,
                    label=f"{label}: AUC {auc}")
            described.append(f"{label} AUC {auc}")
        ax.set_title(f"{finding} (n={curves[finding][0].get('n', '')})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right", frameon=False)
        alt.append(f"{finding}: {', '.join(described)}")
    for ax in list(axes.flat)[len(findings):]:
        ax.set_axis_off()
    fig.supxlabel("False-positive rate (1 − specificity)", fontsize=9)
    fig.supylabel("True-positive rate (sensitivity)", fontsize=9)
    fig.suptitle("ROC curves against the gold-standard labels (AUC, DeLong CI)", fontsize=10)
    return fig, ("ROC curves against the gold-standard labels, one panel per finding, one "
                 "curve per source; " + "; ".join(alt) + ".")


def validation_table(results: dict[str, Any]) -> Table:
    """Each labeller's F1 per finding on the reference reports (Supplementary Appendix 4)."""
    title = "Labeller validation: F1 per finding against the gold-standard labels"
    rows_in = results.get("labeller_validation") or []
    if not rows_in:
        reason = results.get("gold_reason") or (
            "not computed: no gold-labelled case has a reference report")
        return Table("metrics_labeller_validation", title, ["finding", "F1"], [["-", reason]])
    labellers = list(dict.fromkeys((r["labeller"], r["kind"]) for r in rows_in))
    cell = {(r["labeller"], r["finding"]): r for r in rows_in}
    support = {r["finding"]: r["support"] for r in rows_in}
    n = {r["labeller"]: r["n"] for r in rows_in}
    headers = [f"{name} ({'rule-based' if kind == 'rules' else kind.upper()}, n={n[name]})"
               for name, kind in labellers]
    rows = []
    for finding in FINDINGS:
        cells = [finding, str(support.get(finding, "-"))]
        for name, _ in labellers:
            row = cell.get((name, finding))
            cells.append("-" if row is None else _pct(row.get("f1")))
        rows.append(cells)
    descriptions = "; ".join(dict.fromkeys(str(r.get("description", "")) for r in rows_in))
    return Table("metrics_labeller_validation", title,
                 ["finding", "gold positives", *headers], rows,
                 "F1 x100 of each labeller's labels of the reference reports (published or "
                 "final) against the gold-standard labels: how far its labels can be trusted "
                 "(0 where F1 is undefined, e.g. no gold positives and none labelled). "
                 f"Labellers: {descriptions}.")


def judge_tables(results: dict[str, Any], names: Names, level: str) -> list[Table]:
    """Per LLM judge: significant errors per report (CI) per source, and its agreement with
    the experts' error counts per error type."""
    titles = {c["key"]: c["title"] for c in results["comparisons"]}
    tables = []
    for number, judge in enumerate(results.get("judge") or [], start=1):
        errors, agreement = [], []
        for source in judge.get("sources") or []:
            comparison = titles.get(source["comparison"], source["comparison"])
            label = _label(source["source"], source.get("name"), names)
            mean = source.get("significant_per_report")
            errors.append([comparison, label, str(source["n"]),
                           unit(mean, source.get("ci_low"), source.get("ci_high"), 2)])
            for row in source.get("agreement") or []:
                agreement.append([comparison, label, row["label"], str(row["pairs"]),
                                  f"{100 * row['exact_agreement']:.1f}%",
                                  unit(row.get("kappa_any")) if row.get("kappa_any") is not None
                                  else "undefined",
                                  unit(row.get("judge_mean"), digits=2),
                                  unit(row.get("expert_mean"), digits=2)])
        pending = judge.get("not_done") or 0
        name = f"{judge['judge']} ({judge.get('model') or 'LLM'})"
        note = (f"LLM error judge {name}, configuration {judge.get('fingerprint', '')}"
                + (f"; {pending} judgement(s) not done yet (left out)" if pending else "")
                + ".")
        tables.append(Table(f"metrics_judge_{number}",
                            f"LLM judge {judge['judge']}: clinically significant errors per "
                            "report", ["comparison", "source", "reports",
                                       f"significant errors per report ({level} CI)"],
                            errors or [["-", "no report judged yet", "", ""]], note))
        tables.append(Table(f"metrics_judge_agreement_{number}",
                            f"LLM judge {judge['judge']}: agreement with the experts",
                            ["comparison", "source", "error type", "judge-expert pairs",
                             "exact agreement", "kappa (any error of the type)", "judge mean",
                             "expert mean"],
                            agreement or [["-", "no report both judged and rated with error "
                                           "counts", "", "", "", "", "", ""]],
                            "Each expert rating with error counts paired with the judge's "
                            "counts of the same report; both parts (significant and not) "
                            "summed."))
    return tables


# --------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------

def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
    return buffer.getvalue()


def build_section(run: Any, names: Names, slug: str, *, figures: bool = True,
                  alpha: float | None = None
                  ) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """The section (``blocks`` in reading order; ``tables`` and ``figures`` for the report's
    lists) and its PNGs by file stem, from the stored ``run`` (None: not computed yet).
    ``alpha``: the signed analysis plan's (the section says so when the run used another)."""
    section: dict[str, Any] = {"title": TITLE, "anchor": ANCHOR, "intro": [], "tables": [],
                               "figures": [], "blocks": []}
    if run is None:
        section["intro"] = [not_computed_text(slug)]
        return section, {}
    results = run.results
    level = run_level(results)
    section["intro"] = run_lines(run, alpha)
    blocks: list[dict[str, Any]] = []
    for comparison in results["comparisons"]:
        blocks.append({"table": table3(comparison, results, names, level)})
    if not results["comparisons"]:
        blocks.append({"text": "No comparison: the trial has no retrospective campaign with "
                               "published and generated reports, and no signed final report "
                               "with a reader's report or AI draft yet."})
    blocks.append({"table": paired_table(results, names, level)})
    for comparison in results["comparisons"]:
        table = per_finding_table(comparison, names)
        if table is not None:
            blocks.append({"table": table})
    blocks.append({"table": kappa_table(results, names, level)})
    blocks.append({"table": auc_table(results, names, level)})
    pngs: dict[str, tuple[str, bytes]] = {}
    made = roc_figure(results, names) if figures else None
    if made is not None:
        fig, alt = made
        title = "ROC curves per finding against the gold-standard labels"
        png = _png(fig)
        pngs[ROC_STEM] = (title, png)
        blocks.append({"figure": {"stem": ROC_STEM, "title": title, "alt": alt, "png": png,
                                  "tall": True, "data_uri": "data:image/png;base64,"
                                  + base64.b64encode(png).decode()}})
    blocks.append({"table": validation_table(results)})
    blocks += [{"table": table} for table in judge_tables(results, names, level)]
    section["blocks"] = blocks
    section["tables"] = [b["table"] for b in blocks if "table" in b]
    section["figures"] = [b["figure"] for b in blocks if "figure" in b]
    return section, pngs


def provenance(run: Any) -> dict[str, Any] | None:
    """The run the section shows, for the provenance block (its results are not in the data
    snapshot hash: they are results, identified here)."""
    if run is None:
        return None
    blob = json.dumps(run.results, sort_keys=True, separators=(",", ":")).encode()
    labeller = run.results.get("labeller") or {}
    return {"run": run.pk, "created_at": run.created_at.isoformat(timespec="seconds"),
            "labeller": labeller.get("name", ""), "labeller_kind": labeller.get("kind", ""),
            "fingerprint": run.fingerprint, "seed": run.seed, "resamples": run.resamples,
            "results_sha256": hashlib.sha256(blob).hexdigest()}
