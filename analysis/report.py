"""The trial report: summary.json, results tables (CSV), figures (PNG), report.html, report.pdf.

One context (:func:`build_context`) feeds every output, so the file report, the PDF and the
statistician's page in the browser show the same numbers. The report ends with provenance:
the SHA-256 of the data snapshot (the tidy CSVs exactly as exported, concatenated in the
fixed order cases, readings, ratings, long), the software versions and the model endpoints'
fingerprints, so a result can be traced to its data and code and reproduced. Every CSV and
XLSX written (data and results tables) goes through ``datasets.neutralise``: user text such as
a case id ``=1+2`` is never a live formula in a spreadsheet.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import platform
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; the figures are files and data URIs

import matplotlib.image  # noqa: E402
import pandas as pd  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.utils import timezone  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import datasets  # noqa: E402
from analysis.summary import (  # noqa: E402
    AGREEMENT,
    AI,
    ARMS,
    QUALITY,
    SCP,
    arm_scores,
    outcome_rows,
    summarize,
)
from drafting.models import Draft, ModelEndpoint  # noqa: E402
from rating.instruments import RADPEER_ACR2016  # noqa: E402
from reader.models import Reading  # noqa: E402
from trial.models import Trial  # noqa: E402

Progress = Callable[[int, int, str], None]
PACKAGES = ("Django", "numpy", "pandas", "scipy", "statsmodels", "pingouin", "matplotlib",
            "openpyxl")
ARM_COLOURS = {AI: "#2c7fb8", SCP: "#bdbdbd"}


@dataclass
class Table:
    """A results table: the same rows go to CSV, HTML and the PDF."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class ReportFiles:
    """What :func:`build_report` wrote."""

    out_dir: Path
    summary: Path
    html: Path
    pdf: Path | None
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)

    def all(self) -> list[Path]:
        """Every file written, for the command's listing."""
        return [self.summary, self.html, *([self.pdf] if self.pdf else []), *self.tables,
                *self.figures, *self.data]


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------

def _f(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _p(p: Any) -> str:
    if p is None:
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _msd(d: dict, digits: int = 2) -> str:
    if not d.get("available"):
        return "n/a"
    return f"{_f(d['mean'], digits)} ± {_f(d['sd'], digits)} (n={d['n']})"


def _na(entry: dict) -> str:
    return f"not available: {entry.get('reason', '')}"


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f}%)" if d else f"{n}/0"


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def _flow_table(flow: dict) -> Table:
    rows = [["Screened", str(flow["screened"])], ["Excluded", str(flow["excluded"])]]
    rows += [[f"  excluded: {reason}", str(n)] for reason, n in
             flow["exclusion_reasons"].items()]
    rows += [["Awaiting screening", str(flow["awaiting_screening"])],
             ["Enrolled", str(flow["enrolled"])], ["Withdrawn", str(flow["withdrawn"])]]
    rows += [[f"Read, {arm}", str(n)] for arm, n in flow["read_per_arm"].items()]
    rows += [["Read in both arms", str(flow["read_both_arms"])]]
    rows += [[f"Rated, {arm}", str(n)] for arm, n in flow["rated_per_arm"].items()]
    rows += [["Rated in both arms", str(flow["rated_both_arms"])],
             ["Raters", str(flow["raters"])], ["Rating submissions", str(flow["ratings"])]]
    return Table("flow", "CONSORT flow", ["stage", "cases"], rows)


def _baseline_table(baseline: dict) -> Table:
    if not baseline.get("available"):
        return Table("baseline", "Baseline characteristics", ["characteristic", "value"],
                     [["-", _na(baseline)]])
    rows = [["Enrolled cases", str(baseline["n"])], ["Age, mean ± SD", _msd(baseline["age"], 1)]]
    for title, key in (("Age", "age_classes"), ("Sex", "sex"), ("Site", "sites")):
        rows += [[f"{title}: {k}", f"{v['n']} ({_f(v['percent'], 1)}%)"]
                 for k, v in baseline[key].items()]
    prevalence = baseline["finding_prevalence"]
    if prevalence.get("available", True):
        rows += [[f"Finding: {k}", f"{v['n']} ({_f(v['percent'], 1)}%)"]
                 for k, v in prevalence.items()]
    return Table("baseline", "Baseline characteristics", ["characteristic", "value"], rows,
                 "Finding prevalence: share of read cases where any reader ticked the finding.")


OUTCOME_COLUMNS = ["outcome", "analysis", "SCP", "AI-assisted", "difference", "95% CI", "P"]


def _comparison_row(outcome: str, label: str, c: dict, *, swap: bool = False) -> list[str]:
    if not c.get("available"):
        return [outcome, label, "", "", _na(c), "", ""]
    if c.get("effect") is not None:  # mixed model
        return [outcome, label, "", "", _f(c["effect"], 3),
                f"{_f(c['ci_low'], 3)} to {_f(c['ci_high'], 3)}", _p(c["p"])]
    scp, ai = ("a", "b") if swap else ("b", "a")
    return [outcome, label, f"{_f(c[f'mean_{scp}'])} ± {_f(c[f'sd_{scp}'])} (n={c[f'n_{scp}']})",
            f"{_f(c[f'mean_{ai}'])} ± {_f(c[f'sd_{ai}'])} (n={c[f'n_{ai}']})",
            _f(c["difference"], 3), f"{_f(c['ci_low'], 3)} to {_f(c['ci_high'], 3)}",
            _p(c["p"])]


def _outcomes_table(summary: dict) -> Table:
    rows: list[list[str]] = []
    for name, entry in summary["outcomes"].items():
        if not entry.get("available"):
            rows.append([name, "-", "", "", _na(entry), "", ""])
            continue
        for key, label in (("student", "independent t (Student, as published)"),
                           ("welch", "independent t (Welch)"), ("paired", "paired by case"),
                           ("mixed_model", "mixed model (reader, case, rater)")):
            rows.append(_comparison_row(name, label, entry[key]))
    times = summary["reading_time"]
    if not times.get("available"):
        rows.append(["reading time, s", "-", "", "", _na(times), "", ""])
    else:
        for part, title in (("overall", "reading time, s"),
                            ("complex_cases", "reading time, complex cases, s")):
            entry = times[part]
            if not entry.get("available"):
                rows.append([title, "-", "", "", _na(entry), "", ""])
                continue
            for key, label in (("student", "independent t (Student, as published)"),
                               ("welch", "independent t (Welch)"),
                               ("paired", "paired by case")):
                row = _comparison_row(title, label, entry[key], swap=True)
                if key == "student" and entry.get("reduction_percent") is not None:
                    row[4] += f" ({_f(entry['reduction_percent'], 1)}% reduction)"
                rows.append(row)
    return Table("outcomes", "Primary outcomes per arm", OUTCOME_COLUMNS, rows,
                 "Quality and agreement: AI-assisted − SCP over per-report mean scores; "
                 "reading time: SCP − AI-assisted (the reduction).")


def _kendall_table(summary: dict) -> Table:
    rows = []
    for name, per_arm in summary["kendall"].items():
        if "available" in per_arm and not per_arm["available"]:
            rows.append([name, "-", _na(per_arm), "", "", "", "", ""])
            continue
        for arm, k in per_arm.items():
            if not k.get("available"):
                rows.append([name, arm, _na(k), "", "", "", "", ""])
            else:
                rows.append([name, arm, _f(k["w"], 3), k["band"], _f(k["chi2"], 1),
                             str(k["df"]), _p(k["p"]), f"{k['n_raters']} x {k['n_items']}"])
    return Table("kendall", "Kendall's W per instrument per arm",
                 ["instrument", "arm", "W", "band", "chi2", "df", "P", "raters x reports"], rows,
                 "Tie-corrected W; chi-square test on n − 1 df.")


def _preference_table(summary: dict) -> Table:
    pref = summary["preference"]
    columns = ["comparison", "cases", "A preferred by majority", "95% CI", "P (vs 50%)",
               "pooled votes for A"]
    if not pref.get("available"):
        return Table("preference", "Pairwise preference", columns, [["-", _na(pref), "", "",
                                                                      "", ""]])
    rows = []
    for key, c in pref["comparisons"].items():
        if not c.get("available"):
            rows.append([key, _na(c), "", "", "", ""])
            continue
        rows.append([key, str(c["n_cases"]),
                     f"{c['n_cases_preferred']} ({100 * c['share']:.1f}%, >= {c['threshold']} "
                     f"of {c['n_raters']})",
                     f"{100 * c['ci_low']:.1f}% to {100 * c['ci_high']:.1f}%", _p(c["p"]),
                     f"{100 * c['vote_share']:.1f}% of {c['votes_total']}"])
    return Table("preference", "Pairwise preference", columns, rows,
                 "Pooled votes ignore clustering within cases and raters.")


def _positive_table(summary: dict) -> Table:
    pos = summary["positive_rates"]
    columns = ["finding", "AI-assisted", "SCP", "difference", "95% CI", "chi2", "P", "Fisher P"]
    if not pos.get("available"):
        return Table("positive_rates", "Positive rate per finding per arm", columns,
                     [["-", _na(pos), "", "", "", "", "", ""]])
    rows = []
    for finding, c in pos["findings"].items():
        if not c.get("available"):
            rows.append([finding, _na(c), "", "", "", "", "", ""])
            continue
        rows.append([finding, _pct(c["x_a"], c["n_a"]), _pct(c["x_b"], c["n_b"]),
                     f"{100 * c['difference']:.1f} pts",
                     f"{100 * c['ci_low']:.1f} to {100 * c['ci_high']:.1f}",
                     _f(c["chi2"], 2), _p(c["chi2_p"]), _p(c["fisher_p"])])
    return Table("positive_rates", "Positive rate per finding per arm", columns, rows,
                 "Share of submitted readings ticking the finding; Pearson chi-square.")


def _retrospective_tables(summary: dict) -> list[Table]:
    retro = summary["retrospective"]
    columns = ["outcome", "source", "mean ± SD", "Kendall's W", "P (W)"]
    if not retro.get("available"):
        rows = [["-", _na(retro), "", "", ""]]
        return [Table("retrospective", "Retrospective: sources compared", columns, rows)]
    rows = []
    for name in ("quality", "agreement"):
        entry = retro.get(name, {})
        if not entry.get("available"):
            rows.append([name, _na(entry), "", "", ""])
            continue
        for source in entry["sources"]:
            k = entry["kendall"][source]
            rows.append([name, source, _msd(entry["per_source"][source]),
                         _f(k.get("w"), 3) if k.get("available") else _na(k),
                         _p(k.get("p"))])
        for key, label in (("anova", "one-way ANOVA"), ("welch_anova", "Welch ANOVA")):
            a = entry[key]
            rows.append([name, label, f"F({_f(a['df_between'], 0)}, {_f(a['df_within'], 1)}) "
                         f"= {_f(a['f'])}" if a.get("available") else _na(a), "",
                         _p(a.get("p"))])
    tables = [Table("retrospective", "Retrospective: sources compared", columns, rows)]
    ident = summary["source_identification"]
    id_rows = []
    if ident.get("available"):
        for key, c in ident["comparisons"].items():
            if not c.get("available"):
                id_rows.append([key, _na(c), "", "", ""])
                continue
            m = c["matrix"]
            id_rows.append([key, f"model→model {m[0][0]}, model→human {m[0][1]}; "
                            f"human→model {m[1][0]}, human→human {m[1][1]}",
                            _pct(c["correct"], c["n_answers"]), _p(c["p_vs_chance"]),
                            str(len(c["accuracy_per_rater"]))])
    else:
        id_rows.append(["-", _na(ident), "", "", ""])
    tables.append(Table("source_identification", "Source identification (confusion matrix)",
                        ["comparison", "actual → called", "correct", "P (vs 50%)", "raters"],
                        id_rows))
    return tables


def build_tables(summary: dict) -> list[Table]:
    """Every results table of the report, in its order."""
    return [_flow_table(summary["flow"]), _baseline_table(summary["baseline"]),
            _outcomes_table(summary), _kendall_table(summary), _preference_table(summary),
            _positive_table(summary), *_retrospective_tables(summary)]


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _by_arm_figure(groups: dict[str, pd.Series], title: str, ylabel: str) -> Figure | None:
    present = {arm: v.dropna().to_numpy(float) for arm, v in groups.items() if len(v.dropna())}
    if not present:
        return None
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    data = list(present.values())
    if all(len(v) >= 2 for v in data):
        parts = ax.violinplot(data, showmedians=False, showextrema=False)
        for body, arm in zip(parts["bodies"], present, strict=True):
            body.set_facecolor(ARM_COLOURS.get(arm, "#999999"))
            body.set_alpha(0.45)
    ax.boxplot(data, widths=0.18)
    ax.set_xticks(range(1, len(present) + 1), list(present))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return fig


def _preference_figure(summary: dict) -> Figure | None:
    pref = summary["preference"]
    if not pref.get("available"):
        return None
    entries = [(k, c) for k, c in pref["comparisons"].items() if c.get("available")]
    if not entries:
        return None
    fig = Figure(figsize=(6, 1 + 0.7 * len(entries)))
    ax = fig.add_subplot()
    shares = [100 * c["share"] for _, c in entries]
    errors = [[100 * (c["share"] - c["ci_low"]) for _, c in entries],
              [100 * (c["ci_high"] - c["share"]) for _, c in entries]]
    labels = [f"{c['a']} vs {c['b']}" for _, c in entries]
    ax.barh(labels, shares, xerr=errors, color=ARM_COLOURS[AI], capsize=4)
    ax.axvline(50, color="black", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of cases where a majority of raters preferred A (95% CI)")
    ax.set_title("Pairwise preference")
    return fig


FigureData = dict[str, tuple[str, str, dict[str, pd.Series]]]


def figure_data(ratings: pd.DataFrame, readings: pd.DataFrame, *,
                acr_campaigns: Iterable[Any] = ()) -> FigureData:
    """What the by-arm figures plot, by file stem: (title, y label, values per arm).

    Quality and agreement plot the per-report scores the outcome tables are computed from
    (``summary.outcome_rows``: ACR RADPEER campaigns left out, as in the tables); reading time
    plots the submitted readings."""
    acr = set(acr_campaigns)
    data: FigureData = {}
    for stem, instrument, title in (("quality_by_arm", QUALITY, "Report quality (Likert)"),
                                    ("agreement_by_arm", AGREEMENT, "Agreement (RADPEER)")):
        scores = arm_scores(outcome_rows(ratings, instrument, acr)[0])
        data[stem] = (title, "per-report mean score",
                      {arm: scores.loc[scores["arm"] == arm, "value"] for arm in ARMS})
    submitted = readings[readings["status"] == Reading.Status.SUBMITTED]
    data["reading_time_by_arm"] = (
        "Reading time", "seconds",
        {arm: pd.to_numeric(submitted.loc[submitted["arm"] == arm, "reading_seconds"],
                            errors="coerce") for arm in ARMS})
    return data


def build_figures(ratings: pd.DataFrame, readings: pd.DataFrame, summary: dict, *,
                  acr_campaigns: Iterable[Any] = ()) -> dict[str, tuple[str, bytes]]:
    """PNG figures by file stem: (title, bytes). Quality, agreement, reading time, preference."""
    figures: dict[str, tuple[str, bytes]] = {}
    for stem, (title, ylabel, groups) in figure_data(ratings, readings,
                                                     acr_campaigns=acr_campaigns).items():
        fig = _by_arm_figure(groups, title, ylabel)
        if fig is not None:
            figures[stem] = (title, _png(fig))
    fig = _preference_figure(summary)
    if fig is not None:
        figures["preference"] = ("Pairwise preference", _png(fig))
    return figures


# --------------------------------------------------------------------------------------------
# Provenance and the context
# --------------------------------------------------------------------------------------------

def provenance(trial: Trial, csv_files: dict[str, bytes]) -> dict[str, Any]:
    """Data snapshot hash (over ``datasets.csv_files``' tables, the bytes exported), software
    versions and model endpoint fingerprints."""
    data_files = [name for name in csv_files if name != datasets.DICTIONARY_CSV]
    digest = hashlib.sha256()
    for name in data_files:
        digest.update(csv_files[name])
    versions = {"Python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    endpoints = [{"name": e.name, "backend": e.backend, "model_name": e.model_name,
                  "fingerprint": e.fingerprint, "active": e.active}
                 for e in ModelEndpoint.objects.filter(trial=trial).order_by("pk")]
    drafts = {}
    for row in (Draft.objects.filter(case__trial=trial).values("fingerprint", "endpoint__name")
                .order_by("fingerprint")):
        key = row["fingerprint"]
        drafts.setdefault(key, {"fingerprint": key, "endpoint": row["endpoint__name"],
                                "drafts": 0})
        drafts[key]["drafts"] += 1
    return {
        "data_sha256": digest.hexdigest(),
        "data_files": data_files,
        "hash_note": "SHA-256 over the tidy CSVs as exported (text cells starting with =, +, "
                     "-, @, tab or carriage return prefixed with ' against formula injection, "
                     "see the data dictionary), concatenated in this order",
        "export_note": datasets.NEUTRALISATION_NOTE,
        "versions": versions, "model_endpoints": endpoints,
        "draft_fingerprints": list(drafts.values()),
        "generated_at": timezone.now().isoformat(timespec="seconds"),
    }


def _noop(done: int, total: int, what: str) -> None:
    return None


def build_context(trial: Trial, *, figures: bool = True, mixed: bool = True,
                  progress: Progress = _noop) -> dict[str, Any]:
    """Everything the outputs show: frames (and their CSV files), summary, tables, figures,
    provenance."""
    steps = 5
    progress(0, steps, "loading data")
    frames = datasets.export_frames(trial)
    progress(1, steps, "statistics")
    acr = list(trial.campaigns.filter(radpeer_variant=RADPEER_ACR2016)
               .values_list("pk", flat=True))
    summary = summarize(frames["ratings"], frames["readings"], frames["cases"], mixed=mixed,
                        acr_campaigns=acr)
    progress(2, steps, "tables")
    tables = build_tables(summary)
    progress(3, steps, "figures")
    pngs = (build_figures(frames["ratings"], frames["readings"], summary, acr_campaigns=acr)
            if figures else {})
    progress(4, steps, "provenance")
    csv_files = datasets.csv_files(frames)
    prov = provenance(trial, csv_files)
    summary["provenance"] = prov
    summary["trial"] = {"slug": trial.slug, "name": trial.name,
                        "registry_id": trial.registry_id}
    progress(5, steps, "done")
    return {
        "trial": trial, "summary": summary, "tables": tables, "frames": frames,
        "csv_files": csv_files, "pngs": pngs, "provenance": prov,
        "figures": [{"stem": stem, "title": title,
                     "data_uri": "data:image/png;base64," + base64.b64encode(png).decode()}
                    for stem, (title, png) in pngs.items()],
        "key_numbers": key_numbers(summary),
    }


def key_numbers(summary: dict) -> list[str]:
    """The headline lines (title page, top of the HTML)."""
    lines = []
    for name, entry in summary["outcomes"].items():
        student = entry.get("student", {})
        if entry.get("available") and student.get("available"):
            lines.append(f"{name}: AI-assisted {_f(student['mean_a'])} vs SCP "
                         f"{_f(student['mean_b'])}, difference {_f(student['difference'], 3)} "
                         f"(95% CI {_f(student['ci_low'], 3)} to {_f(student['ci_high'], 3)}), "
                         f"P {_p(student['p'])}")
        else:
            lines.append(f"{name}: {_na(student if student else entry)}")
    overall = summary["reading_time"].get("overall", {})
    if overall.get("available") and overall["student"].get("available"):
        s = overall["student"]
        lines.append(f"reading time: SCP {_f(s['mean_a'], 1)} s vs AI-assisted "
                     f"{_f(s['mean_b'], 1)} s, reduction {_f(s['difference'], 1)} s "
                     f"({_f(overall['reduction_percent'], 1)}%), P {_p(s['p'])}")
    pref = summary["preference"]
    for key, c in pref.get("comparisons", {}).items():
        if c.get("available"):
            lines.append(f"preference {key}: {100 * c['share']:.1f}% of {c['n_cases']} cases")
    return lines


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

def render_html(context: dict[str, Any], request: Any = None) -> str:
    """The self-contained report page (figures embedded as data URIs)."""
    return render_to_string("analysis/report.html", {
        **context, "summary_json": json.dumps(context["summary"], indent=1)}, request=request)


def _text_page(pdf: PdfPages, title: str, lines: list[str]) -> None:
    per_page = 60
    for start in range(0, max(len(lines), 1), per_page):
        fig = Figure(figsize=(8.27, 11.69))
        fig.text(0.06, 0.96, title, fontsize=13, weight="bold", va="top")
        fig.text(0.06, 0.93, "\n".join(lines[start:start + per_page]), fontsize=6.5,
                 family="monospace", va="top")
        pdf.savefig(fig)


def _table_lines(table: Table) -> list[str]:
    widths = [min(48, max([len(c)] + [len(r[i]) for r in table.rows]))
              for i, c in enumerate(table.columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(textwrap.shorten(c, w, placeholder="…").ljust(w) if len(c) > w
                         else c.ljust(w) for c, w in zip(cells, widths, strict=True))

    out = [line(table.columns), "-" * min(150, sum(widths) + 2 * len(widths))]
    out += [line(r) for r in table.rows]
    if table.note:
        out += ["", *textwrap.wrap(table.note, 140)]
    return out


def render_pdf(context: dict[str, Any], target: Path | io.BytesIO) -> None:
    """report.pdf with matplotlib: title page with key numbers, figures, tables as text."""
    trial, prov = context["trial"], context["provenance"]
    with PdfPages(target) as pdf:
        lines = [f"Trial: {trial.name} ({trial.slug})", "", "Key results:"]
        lines += [f"  {line}" for line in context["key_numbers"]]
        lines += ["", f"Data snapshot SHA-256: {prov['data_sha256']}",
                  f"Exports: {prov['export_note']}",
                  "Versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items())]
        lines += [f"Model endpoint: {e['name']} {e['model_name']} fingerprint {e['fingerprint']}"
                  for e in prov["model_endpoints"]]
        wrapped = [w for line in lines for w in (textwrap.wrap(line, 120) or [""])]
        _text_page(pdf, "Trial analysis report", wrapped)
        for stem, (title, png) in context["pngs"].items():
            fig = Figure(figsize=(8.27, 11.69))
            ax = fig.add_axes((0.08, 0.3, 0.84, 0.6))
            ax.imshow(matplotlib.image.imread(io.BytesIO(png), format="png"))
            ax.set_axis_off()
            fig.text(0.08, 0.94, f"Figure: {title} ({stem}.png)", fontsize=12, weight="bold")
            pdf.savefig(fig)
        for table in context["tables"]:
            _text_page(pdf, table.title, _table_lines(table))


def write_table_csv(table: Table, path: Path) -> None:
    """A results table as CSV (formatted as in the report), through the exports' one CSV
    serialisation: a cell can start with user text (an imported source's name), so cells are
    neutralised like the data's; formatted text such as "-0.250" or "-" is written '-0.250 and
    '- (``datasets.neutralise``)."""
    path.write_bytes(datasets.csv_bytes(pd.DataFrame(table.rows, columns=table.columns)))


def build_report(trial: Trial, out_dir: Path | str, *, figures: bool = True, pdf: bool = True,
                 mixed: bool = True, progress: Progress = _noop) -> ReportFiles:
    """Write summary.json, report.html (+ .pdf), tables/*.csv, figures/*.png and data/ (the
    tidy CSVs, their data dictionary and an XLSX) into ``out_dir``."""
    out = Path(out_dir)
    for sub in ("tables", "figures", "data"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    context = build_context(trial, figures=figures, mixed=mixed, progress=progress)
    files = ReportFiles(out_dir=out, summary=out / "summary.json", html=out / "report.html",
                        pdf=out / "report.pdf" if pdf else None)
    files.summary.write_text(json.dumps(context["summary"], indent=2, allow_nan=False))
    for table in context["tables"]:
        path = out / "tables" / f"{table.name}.csv"
        write_table_csv(table, path)
        files.tables.append(path)
    for stem, (_title, png) in context["pngs"].items():
        path = out / "figures" / f"{stem}.png"
        path.write_bytes(png)
        files.figures.append(path)
    files.data = datasets.export_csv(context["csv_files"], out / "data")
    xlsx = out / "data" / "data.xlsx"
    datasets.export_xlsx(context["frames"], xlsx)
    files.data.append(xlsx)
    files.html.write_text(render_html(context))
    if files.pdf is not None:
        render_pdf(context, files.pdf)
    return files
