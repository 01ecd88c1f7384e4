"""The trial report: summary.json, results tables (CSV), figures (PNG), report.html, report.pdf.

One context (:func:`build_context`) feeds every output, so the file report, the PDF and the
statistician's page in the browser show the same numbers. The report ends with provenance:
the SHA-256 of the data snapshot (the tidy CSVs exactly as exported, concatenated in the
fixed order cases, readings, ratings, long), the software versions and the model endpoints'
fingerprints, and the automated report metrics run it shows (with its results' own hash), so
a result can be traced to its data and code and reproduced. Every CSV and
XLSX written (data and results tables) goes through ``datasets.neutralise``: user text such as
a case id ``=1+2`` is never a live formula in a spreadsheet.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import platform
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
from matplotlib.figure import Figure  # noqa: E402

from analysis import datasets, metrics_section  # noqa: E402
from analysis.consort import consort_png  # noqa: E402
from analysis.models import OUTCOMES as OUTCOME_NAMES  # noqa: E402
from analysis.models import SUBGROUPS as SUBGROUP_NAMES  # noqa: E402
from analysis.models import AnalysisPlan  # noqa: E402
from analysis.summary import (  # noqa: E402
    AGREEMENT,
    AI,
    ARMS,
    METHOD_LABELS,
    QUALITY,
    SCP,
    arm_scores,
    outcome_rows,
    summarize,
)
from analysis.tables import (  # noqa: E402
    Names,
    Table,
    baseline_table,
    blinding_table,
    ci_header,
    comparison_name,
    flags_table,
    flow_table,
    kendall_table,
    level,
    na,
    outcomes_table,
    positive_table,
    preference_table,
    retrospective_tables,
    source_name,
    subgroup_table,
    table1,
)
from drafting.models import Draft, ModelEndpoint  # noqa: E402
from rating.instruments import RADPEER_ACR2016  # noqa: E402
from reader.models import Reading  # noqa: E402
from trial.models import Trial  # noqa: E402

Progress = Callable[[int, int, str], None]
PACKAGES = ("Django", "numpy", "pandas", "scipy", "statsmodels", "pingouin", "matplotlib",
            "openpyxl")
ARM_COLOURS = {AI: "#2c7fb8", SCP: "#bdbdbd"}
MISSING_NAMES = dict(AnalysisPlan.Missing.choices)


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
# Figures
# --------------------------------------------------------------------------------------------

def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _by_arm_figure(groups: dict[str, pd.Series], title: str, ylabel: str,
                   names: Names) -> Figure | None:
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
    ax.set_xticks(range(1, len(present) + 1),
                  [f"{source_name(arm, names)}\n(n={len(v)})" for arm, v in present.items()])
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return fig


def _preference_figure(summary: dict, names: Names) -> Figure | None:
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
    labels = [comparison_name(k, names) for k, _ in entries]
    ax.barh(labels, shares, xerr=errors, color=ARM_COLOURS[AI], capsize=4)
    ax.axvline(50, color="black", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of cases where a majority of raters preferred the first "
                  f"({ci_header(summary)})")
    ax.set_title("Pairwise preference")
    return fig


FigureData = dict[str, tuple[str, str, dict[str, pd.Series]]]


def figure_data(ratings: pd.DataFrame, readings: pd.DataFrame, *,
                acr_campaigns: Iterable[Any] = (), campaign: Any = None) -> FigureData:
    """What the by-arm figures plot, by file stem: (title, y label, values per arm).

    Quality and agreement plot the per-report scores the outcome tables are computed from
    (``summary.outcome_rows``, of ``campaign`` when given: the primary one; ACR RADPEER
    campaigns left out, as in the tables); reading time plots the submitted readings."""
    acr = set(acr_campaigns)
    if campaign is not None:
        ratings = ratings[ratings["campaign"] == campaign]
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
                  acr_campaigns: Iterable[Any] = (),
                  names: Names | None = None) -> dict[str, tuple[str, bytes]]:
    """PNG figures by file stem: (title, bytes). Quality, agreement (the primary campaign),
    reading time, preference, the CONSORT flow."""
    names = names or {AI: "AI-assisted", SCP: "SCP"}
    figures: dict[str, tuple[str, bytes]] = {}
    campaign = summary.get("primary_campaign", {}).get("id")
    for stem, (title, ylabel, groups) in figure_data(
            ratings, readings, acr_campaigns=acr_campaigns, campaign=campaign).items():
        fig = _by_arm_figure(groups, title, ylabel, names)
        if fig is not None:
            figures[stem] = (title, _png(fig))
    fig = _preference_figure(summary, names)
    if fig is not None:
        figures["preference"] = ("Pairwise preference", _png(fig))
    flow_png = consort_png(summary["flow"], names)
    if flow_png is not None:
        figures["consort_flow"] = ("Participant flow (CONSORT)", flow_png)
    return figures


# --------------------------------------------------------------------------------------------
# Provenance and the context
# --------------------------------------------------------------------------------------------

def provenance(trial: Trial, csv_files: dict[str, bytes],
               metrics_run: Any = None) -> dict[str, Any]:
    """Data snapshot hash (over ``datasets.csv_files``' data tables, the bytes exported; the
    metric tables are results and left out), software versions, model endpoint fingerprints
    and the metrics run the report shows (its results' own hash)."""
    data_files = [name for name in csv_files
                  if name.removesuffix(".csv") in datasets.SNAPSHOT_TABLES]
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
        "metrics_run": metrics_section.provenance(metrics_run),
        "generated_at": timezone.now().isoformat(timespec="seconds"),
    }


def _noop(done: int, total: int, what: str) -> None:
    return None


def arm_names(trial: Trial) -> Names:
    """The arms as the trial calls them (its labels), for every table and figure."""
    return {AI: trial.ai_assisted_label or "AI-assisted", SCP: trial.scp_label or "SCP"}


def plan_lines(summary: dict) -> list[str]:
    """The analysis plan as the report states it (or that there is none)."""
    plan = summary.get("plan")
    primary = summary.get("primary_campaign", {})
    if not plan:
        return ["No signed statistical analysis plan: every result in this report is "
                "exploratory.",
                f"Primary campaign: {primary.get('name') or '-'} ({primary.get('why', '')})."]
    lines = [f"Statistical analysis plan version {plan['version']}, signed: {plan['signed']}; "
             f"SHA-256 {plan['sha256']}."]
    if plan.get("after_unblinding"):
        lines.append("This version was signed after the trial was locked (unblinded): its "
                     "choices cannot count as pre-specified in the usual sense.")
    outcomes = ", ".join(OUTCOME_NAMES.get(o, o) for o in plan["primary_outcomes"]) or "-"
    secondary = ", ".join(OUTCOME_NAMES.get(o, o) for o in plan["secondary_outcomes"]) or "-"
    lines += [
        f"Primary campaign: {primary.get('name') or '-'}. Primary outcomes: {outcomes}. "
        f"Secondary outcomes: {secondary}.",
        f"Primary method: {METHOD_LABELS.get(plan['primary_method'], plan['primary_method'])}"
        f"; alpha {plan['alpha']:g} (two-sided; {level(1 - plan['alpha'])} CIs).",
        "Subgroups: " + (", ".join(SUBGROUP_NAMES.get(g, g) for g in plan["subgroups"]) or
                         "none") + ". Missing ratings: "
        + MISSING_NAMES.get(plan["missing_ratings"], plan["missing_ratings"]) + ".",
    ]
    if plan.get("pooled_campaigns"):
        lines.append(f"Pooled analysis of campaigns {plan['pooled_campaigns']} with the primary "
                     "one, as planned.")
    if plan.get("reason"):
        lines.append(f"Why this version: {plan['reason']}")
    lines.append("Each estimate is labelled pre-specified (primary or secondary outcome, the "
                 "plan's method and campaign) or exploratory (everything else).")
    return lines


def _figure(pngs: dict[str, tuple[str, bytes]], stem: str) -> list[dict[str, Any]]:
    if stem not in pngs:
        return []
    title, png = pngs[stem]
    return [{"stem": stem, "title": title, "png": png,
             "data_uri": "data:image/png;base64," + base64.b64encode(png).decode()}]


def build_sections(summary: dict, names: Names, pngs: dict[str, tuple[str, bytes]],
                   metrics: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The report's sections in order: plan, primary outcomes (the primary campaign), flow,
    subgroups, findings, blinding, consistency flags, then every other campaign on its own,
    only when the plan says so the pooled analysis, and last the report generation metrics
    (``metrics``: ``metrics_section.build_section``'s section, when given)."""
    campaigns = summary.get("campaigns", {})
    primary = summary.get("primary_campaign", {})
    blinding = summary.get("blinding", {})
    primary_blinding = blinding.get("campaigns", {}).get(str(primary.get("id")), {})
    intro = [f"Ratings of the primary campaign only ({primary.get('name') or '-'}: "
             f"{primary.get('why', '')}); other campaigns have their own sections."]
    if primary_blinding.get("blinding_in_doubt"):
        intro.append("Caution: raters of this campaign identified the reports' sources more "
                     "often than chance (see the blinding assessment), so the preference and "
                     "quality ratings may not have been blind. " + primary_blinding["verdict"])
    sections: list[dict[str, Any]] = [
        {"title": "Statistical analysis plan", "intro": plan_lines(summary), "tables": [],
         "figures": []},
        {"title": "Primary outcomes", "intro": intro,
         "tables": [table1(summary, names), outcomes_table(summary, names),
                    kendall_table(summary["kendall"], names),
                    preference_table(summary["preference"], names,
                                     confidence=summary.get("confidence"))],
         "figures": [*_figure(pngs, "quality_by_arm"), *_figure(pngs, "agreement_by_arm"),
                     *_figure(pngs, "reading_time_by_arm"), *_figure(pngs, "preference")]},
        {"title": "Participant flow and baseline", "intro": [],
         "tables": [flow_table(summary["flow"], names), baseline_table(summary["baseline"])],
         "figures": _figure(pngs, "consort_flow")},
        {"title": "Subgroups", "intro": [], "tables": [subgroup_table(summary, names)],
         "figures": []},
        {"title": "Findings per arm", "intro": [], "tables": [positive_table(summary, names)],
         "figures": []},
        {"title": "Blinding assessment",
         "intro": [f"{campaigns.get(cid, {}).get('name', cid)}: {entry['verdict']}"
                   for cid, entry in blinding.get("campaigns", {}).items()
                   if entry.get("verdict")],
         "tables": [blinding_table(blinding, names, campaigns,
                                   confidence=summary.get("confidence"))], "figures": []},
        {"title": "Rating consistency flags", "intro": [],
         "tables": [flags_table(summary.get("consistency_flags", {}), names, campaigns)],
         "figures": []},
    ]
    headline_retro = [cid for cid in summary.get("headline_campaigns", [])
                      if cid != primary.get("id")]
    for key, campaign in campaigns.items():
        if campaign.get("id") == primary.get("id"):
            continue
        kind = campaign.get("kind") or "campaign"
        title = f"Campaign {campaign['name']} ({kind})"
        if not campaign.get("available"):
            sections.append({"title": title, "intro": [na(campaign)], "tables": [],
                             "figures": []})
            continue
        prefix = "" if campaign.get("id") in headline_retro else f"campaign{key}_"
        if kind == "prospective":
            tables = [outcomes_table(summary, names, name=f"{prefix}outcomes",
                                     title="Outcomes of this campaign",
                                     outcomes=campaign["outcomes"], with_time=False),
                      kendall_table(campaign["kendall"], names, name=f"{prefix}kendall"),
                      preference_table(campaign["preference"], names,
                                       name=f"{prefix}preference",
                                       confidence=summary.get("confidence"))]
        else:
            tables = [*retrospective_tables(campaign["retrospective"],
                                            campaign["source_identification"], names,
                                            prefix=prefix, kind=kind.capitalize()),
                      preference_table(campaign["preference"], names,
                                       name=f"{prefix}preference_sources",
                                       confidence=summary.get("confidence"))]
        note = ("Not the plan's primary campaign: its results are reported separately and "
                "are exploratory unless the plan names them." if kind == "prospective" else
                "Model reports against the published reports, this campaign only.")
        sections.append({"title": title, "intro": [note], "tables": tables, "figures": []})
    pooled = summary.get("pooled", {})
    if pooled.get("available"):
        sections.append({"title": "Pooled analysis", "intro": [pooled["label"]],
                         "tables": [outcomes_table(summary, names, name="pooled_outcomes",
                                                   title="Outcomes, campaigns pooled",
                                                   outcomes=pooled["outcomes"],
                                                   with_time=False)], "figures": []})
    if metrics is not None:
        sections.append(metrics)
    return sections


def build_context(trial: Trial, *, figures: bool = True, mixed: bool = True,
                  progress: Progress = _noop) -> dict[str, Any]:
    """Everything the outputs show: frames (and their CSV files), summary, sections (tables
    and figures), provenance."""
    from analysis.plans import current_plan, plan_summary

    steps = 5
    progress(0, steps, "loading data")
    frames = datasets.export_frames(trial)
    progress(1, steps, "statistics")
    acr = list(trial.campaigns.filter(radpeer_variant=RADPEER_ACR2016)
               .values_list("pk", flat=True))
    campaigns = {c.pk: {"name": c.name, "kind": c.kind} for c in trial.campaigns.order_by("pk")}
    plan = plan_summary(current_plan(trial))
    summary = summarize(frames["ratings"], frames["readings"], frames["cases"], mixed=mixed,
                        acr_campaigns=acr, plan=plan, campaigns=campaigns)
    names = arm_names(trial)
    progress(2, steps, "figures")
    pngs = (build_figures(frames["ratings"], frames["readings"], summary, acr_campaigns=acr,
                          names=names) if figures else {})
    run = datasets.latest_metrics_run(trial)
    metrics, metric_pngs = metrics_section.build_section(
        run, names, trial.slug, figures=figures,
        alpha=float(plan["alpha"]) if plan else None)
    pngs.update(metric_pngs)
    progress(3, steps, "tables")
    sections = build_sections(summary, names, pngs, metrics)
    tables = [table for section in sections for table in section["tables"]]
    progress(4, steps, "provenance")
    metric_frames = datasets.metric_frames(trial, run)
    csv_files = datasets.csv_files({**frames, **metric_frames})
    prov = provenance(trial, csv_files, run)
    summary["provenance"] = prov
    summary["trial"] = {"slug": trial.slug, "name": trial.name,
                        "registry_id": trial.registry_id, "arm_names": names}
    progress(5, steps, "done")
    consort = pngs.get("consort_flow")
    return {
        "title": "Trial analysis report",
        "trial": summary["trial"], "trial_object": trial, "summary": summary,
        "tables": tables, "sections": sections, "frames": frames,
        "metric_frames": metric_frames, "metrics_run": run, "csv_files": csv_files,
        "pngs": pngs, "provenance": prov, "generated_at": prov["generated_at"],
        "plan": plan, "consort_png": consort[1] if consort else None,
        "figures": [fig for section in sections for fig in section["figures"]],
        "key_numbers": key_numbers(summary, names), "notes": summary["notes"],
    }


def key_numbers(summary: dict, names: Names | None = None) -> list[str]:
    """The headline lines (title page, top of the HTML): Table 1's rows in words."""
    names = names or {AI: "AI-assisted", SCP: "SCP"}
    lines = []
    for row in table1(summary, names).rows:
        outcome, scp, ai, diff, interval, p, _method, basis = row
        if not interval:
            lines.append(f"{outcome}: {diff}")
        elif scp:
            lines.append(f"{outcome}: {names[SCP]} {scp} vs {names[AI]} {ai}; difference "
                         f"{diff} ({ci_header(summary)} {interval}), P {p} [{basis}]")
        else:
            lines.append(f"{outcome}: {diff} ({ci_header(summary)} {interval}), P {p} "
                         f"[{basis}]")
    return lines


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

def render_html(context: dict[str, Any], request: Any = None,
                template: str = "analysis/report.html") -> str:
    """The report page: self-contained (figures embedded as data URIs) for the file report;
    ``analysis/report_page.html`` wraps the same body in the site's pages."""
    return render_to_string(template, {
        **context, "summary_json": json.dumps(context["summary"], indent=1)}, request=request)


def render_pdf(context: dict[str, Any], target: Path | io.BytesIO) -> None:
    """report.pdf: laid-out tables, the figures, the CONSORT flow (``analysis.pdf``)."""
    from analysis.pdf import render_pdf as render

    render(context, target)


def write_table_csv(table: Table, path: Path) -> None:
    """A results table as CSV (formatted as in the report), through the exports' one CSV
    serialisation: a cell can start with user text (an imported source's name), so cells are
    neutralised like the data's; formatted text such as "-0.250" or "-" is written '-0.250 and
    '- (``datasets.neutralise``)."""
    path.write_bytes(datasets.csv_bytes(pd.DataFrame(table.rows, columns=table.columns)))


def build_report(trial: Trial, out_dir: Path | str, *, figures: bool = True, pdf: bool = True,
                 mixed: bool = True, progress: Progress = _noop) -> ReportFiles:
    """Write summary.json, report.html (+ .pdf), tables/*.csv, figures/*.png and data/ (the
    tidy CSVs, the newest metrics run's tables, their data dictionary and an XLSX) into
    ``out_dir``."""
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
    datasets.export_xlsx({**context["frames"], **context["metric_frames"]}, xlsx)
    files.data.append(xlsx)
    files.html.write_text(render_html(context))
    if files.pdf is not None:
        render_pdf(context, files.pdf)
    return files
