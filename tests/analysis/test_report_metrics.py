"""The report generation metrics in the analysis: a small trial with a retrospective campaign
(two models against the published reports), a gold label set and imported probabilities, one
metrics run by the rule-based labeller; then the page, the HTML report, the PDF, the compute
form and its access rules, the exports with their data dictionary, and the complex-case
definition that switches to the gold labels."""

from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from analysis import datasets, metrics_section
from analysis.report import build_context, build_report, render_pdf
from analysis.summary import summarize
from metrics import compute, jobs
from metrics.imports import import_labels, import_probabilities
from metrics.models import MetricsRun
from rating import instruments as inst
from rating.models import Campaign
from rating.report_import import import_reports
from reader.models import Reading
from tests.support.campaign_world import build_campaign_world
from tests.support.factories import (
    CaseFactory,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from trial.findings import FINDINGS
from trial.models import AuditEvent, Role, Trial

pytestmark = pytest.mark.django_db

PHRASES = {
    "Cardiomegaly": "Cardiomegaly.", "Pleural Effusion": "Small left pleural effusion.",
    "Edema": "Pulmonary edema.", "Consolidation": "Right lower lobe consolidation.",
    "Pneumonia": "Findings consistent with pneumonia.", "Pneumothorax": "Right pneumothorax.",
    "Atelectasis": "Bibasal atelectasis.",
    "Lung Lesion": "A 2 cm nodule in the right upper lobe.",
    "Support Devices": "Endotracheal tube in place.",
    "Fracture": "Fracture of the left sixth rib.",
}
CLEAR = "The lungs are clear. No acute cardiopulmonary abnormality."
GOLD = {
    "R01": ("Cardiomegaly", "Pleural Effusion", "Edema"), "R02": (),
    "R03": ("Consolidation", "Pneumonia"), "R04": ("Pneumothorax",),
    "R05": ("Atelectasis", "Pleural Effusion"), "R06": ("Lung Lesion",), "R07": (),
    "R08": ("Cardiomegaly", "Support Devices"),
    "R09": ("Consolidation", "Atelectasis", "Pleural Effusion"), "R10": ("Fracture",),
    "R11": ("Pleural Effusion", "Cardiomegaly"), "R12": ("Atelectasis",),
}
# The published reports miss a finding now and then (so the labeller validation is not 100).
PUBLISHED = {**GOLD, "R10": (), "R12": ("Atelectasis", "Consolidation")}
MODEL_A = {**GOLD, "R01": ("Cardiomegaly", "Pleural Effusion"), "R04": (),
           "R07": ("Atelectasis",)}
MODEL_B = {**GOLD, "R01": ("Cardiomegaly",), "R03": ("Pneumonia",), "R05": ("Pleural Effusion",),
           "R06": (), "R09": ("Pleural Effusion",), "R11": ()}
SEED = 11
TABLE3_KEYS = ("f1_14_micro", "f1_14_macro", "f1_5_micro", "f1_5_macro", "bleu1", "bleu4",
               "rouge_l")


def report(findings: tuple[str, ...]) -> tuple[str, str]:
    if not findings:
        return CLEAR, "Normal chest radiograph."
    return " ".join(PHRASES[f] for f in findings), PHRASES[findings[0]]


def reports_csv() -> bytes:
    lines = ["case_id,source,findings,impression"]
    for source, table in (("published", PUBLISHED), ("modelA", MODEL_A), ("modelB", MODEL_B)):
        for case_id, findings in table.items():
            text, impression = report(findings)
            lines.append(f'{case_id},{source},"{text}","{impression}"')
    return ("\n".join(lines) + "\n").encode()


def labels_csv(table: dict[str, tuple[str, ...]]) -> str:
    lines = ["case_id," + ",".join(FINDINGS)]
    for case_id, findings in table.items():
        values = {f: int(f in findings) for f in FINDINGS}
        values["No Finding"] = int(not findings)
        lines.append(case_id + "," + ",".join(str(values[f]) for f in FINDINGS))
    return "\n".join(lines) + "\n"


def probabilities_csv() -> str:
    rng = np.random.default_rng(5)
    lines = ["case_id,source," + ",".join(FINDINGS)]
    for source, noise in (("modelA", 0.15), ("modelB", 0.35)):
        for case_id, findings in GOLD.items():
            positive = {f: (f in findings) or (f == "No Finding" and not findings)
                        for f in FINDINGS}
            values = [float(np.clip((0.75 if positive[f] else 0.25) + rng.normal(0, noise),
                                    0, 1)) for f in FINDINGS]
            lines.append(f"{case_id},{source}," + ",".join(f"{v:.3f}" for v in values))
    return "\n".join(lines) + "\n"


@dataclass
class World:
    trial: Trial
    campaign: Campaign
    statistician: object


def make_world() -> World:
    trial = TrialFactory()
    site = SiteFactory(trial=trial)
    for case_id in GOLD:
        CaseFactory(trial=trial, site=site, case_id=case_id)
    campaign = Campaign.objects.create(trial=trial, name="Retrospective models",
                                       kind=Campaign.Kind.RETROSPECTIVE,
                                       instruments=list(inst.ALL), seed=3)
    campaign.raters.set([MembershipFactory(trial=trial, role=Role.RATER, site=site)
                         for _ in range(2)])
    assert import_reports(campaign, reports_csv()) == 3 * len(GOLD)
    import_labels(trial, labels_csv(GOLD), name="Gold (two radiologists)", gold=True,
                  description="Consensus of two thoracic radiologists")
    assert import_probabilities(trial, probabilities_csv()) == 2 * len(GOLD)
    statistician = MembershipFactory(trial=trial, role=Role.STATISTICIAN,
                                     user=UserFactory(username="stat-metrics")).user
    return World(trial, campaign, statistician)


def run_metrics(trial: Trial, **kwargs) -> MetricsRun:
    from metrics import sources

    labeller = jobs.rules_labeller(trial)
    jobs.label(labeller, [t for c in sources.comparisons(trial) for t in c.texts()])
    return compute.run(trial, labeller, seed=SEED, resamples=200, permutations=200, **kwargs)


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def computed(world) -> tuple[World, MetricsRun]:
    return world, run_metrics(world.trial, by=world.statistician)


def cell(entry: dict) -> str:
    """A Supplementary Table 3 cell as the report must print it (x100, one decimal)."""
    if entry.get("value") is None:
        return entry["reason"]
    return (f"{100 * entry['value']:.1f} ({100 * entry['ci_low']:.1f}–"
            f"{100 * entry['ci_high']:.1f})")


def table3_rows(run: MetricsRun) -> list[list[str]]:
    """Every source row of every comparison, from the stored results."""
    rows = []
    for comparison in run.results["comparisons"]:
        for source in comparison["sources"]:
            rows.append([source["name"], str(source["n"]),
                         *[cell(source["metrics"][k]) for k in TABLE3_KEYS[:4]],
                         run.results["model_metrics"]["radgraph"]["reason"],
                         *[cell(source["metrics"][k]) for k in TABLE3_KEYS[4:]]])
    return rows


def row_html(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def plain(page: bytes | str) -> str:
    text = page.decode() if isinstance(page, bytes) else page
    return html.unescape(text)


def test_the_page_and_the_html_report_show_the_stored_metrics(computed, client,
                                                              tmp_path) -> None:
    world, run = computed
    results = run.results
    (comparison,) = results["comparisons"]
    assert [s["source"] for s in comparison["sources"]] == ["modelA", "modelB"]
    assert results["gold"]["cases"] == len(GOLD) and results["kappa"] and results["roc"]
    assert "not computed" in results["model_metrics"]["radgraph"]["reason"]

    client.force_login(world.statistician)
    page = plain(client.get(f"/analysis/{world.trial.slug}/").content)
    files = build_report(world.trial, tmp_path / "r", pdf=False, mixed=False)
    report_html = plain(files.html.read_text())
    for shown in (page, report_html):
        section = shown[shown.index('id="report-metrics"'):]
        assert "<h2>Report generation metrics</h2>" in section
        # which run: its date, the rule-based labeller named as such, seed and resamples
        assert f"Run {run.pk}, computed {run.created_at:%Y-%m-%d %H:%M} UTC" in section
        assert "Labeller: rule-based — Rule-based labeller" in section
        assert "RULE-BASED labeller" in section
        assert f"Seed {SEED}; 200 bootstrap resamples" in section
        assert results["methods"]["f1"] in section and results["methods"]["auc"] in section
        # Supplementary Table 3: every row as computed, RadGraph "not computed: <reason>"
        for row in table3_rows(run):
            assert row_html(row) in section, row
        assert "F1-5 findings (the 5 most often positive in the reference labels): " + ", ".join(
            comparison["top5"]) in section
        assert "x100 with one decimal" in section
        # paired comparisons, per finding, kappa against the gold standard, AUC, ROC figure
        paired = next(p for p in comparison["paired"] if p["metric"] == "f1_14_micro")
        assert (f"<td>modelA − modelB</td><td>F1-14 micro</td><td>{paired['n']}</td>"
                f"<td>{100 * paired['difference']:.1f}</td>") in section
        assert 'id="table-metrics_per_finding_' in section
        assert 'id="table-metrics_kappa"' in section
        kappa = next(k for k in results["kappa"]
                     if k["source"] == "modelA" and k["finding"] == "Pleural Effusion")
        assert (f"{kappa['kappa']:.3f} ({kappa['ci_low']:.3f}–{kappa['ci_high']:.3f})"
                in section)
        figure = re.search(r'<figure id="figure-roc_curves"[^>]*><img src="data:image/png;'
                           r'base64,[A-Za-z0-9+/=]{1000,}" alt="([^"]+)"', section)
        assert figure, "no ROC figure"
        auc = next(r for r in results["roc"]
                   if r["source"] == "modelA" and r["finding"] == "Pleural Effusion")
        assert (f"Pleural Effusion: modelA AUC {auc['auc']:.3f} ({auc['ci_low']:.3f}–"
                f"{auc['ci_high']:.3f})") in figure.group(1)
        assert 'id="table-metrics_labeller_validation"' in section
        assert "Rule-based labeller (rule-based, n=12)" in section
        assert "Report metrics: run " in shown and "results SHA-256" in shown
    assert 'id="compute-metrics"' in page and 'id="compute-metrics"' not in report_html

    assert (tmp_path / "r" / "figures" / "roc_curves.png").read_bytes().startswith(b"\x89PNG")
    table3 = pd.read_csv(tmp_path / "r" / "tables" / f"metrics_table3_{comparison['key']}.csv")
    assert list(table3["source"]) == ["modelA", "modelB"]
    # the metric tables are exported, but the data snapshot hash stays over the data tables
    assert (tmp_path / "r" / "data" / "report_metrics.csv").exists()
    summary = pd.read_json(files.summary, typ="series")
    assert summary["provenance"]["data_files"] == ["cases.csv", "readings.csv", "ratings.csv",
                                                   "long.csv"]
    assert summary["provenance"]["metrics_run"]["run"] == run.pk


def test_a_stored_f1_agrees_with_scikit_learn(computed) -> None:
    _, run = computed
    results = run.results
    (comparison,) = results["comparisons"]
    rows = pd.DataFrame(results["reports"], columns=results["report_columns"])
    for source in comparison["sources"]:
        mine = rows[rows.source == source["source"]]
        y_pred = np.array([[int(b) for b in bits] for bits in mine["labels"]])
        y_true = np.array([[int(b) for b in bits] for bits in mine["reference_labels"]])
        assert y_true.shape == (len(GOLD), len(FINDINGS))
        metrics = source["metrics"]
        assert metrics["f1_14_micro"]["value"] == pytest.approx(
            f1_score(y_true, y_pred, average="micro", zero_division=0))
        assert metrics["f1_14_macro"]["value"] == pytest.approx(
            f1_score(y_true, y_pred, average="macro", zero_division=0))
        top5 = [FINDINGS.index(f) for f in comparison["top5"]]
        assert metrics["f1_5_micro"]["value"] == pytest.approx(
            f1_score(y_true[:, top5], y_pred[:, top5], average="micro", zero_division=0))
        # the shown value is this one, x100 with one decimal
        assert cell(metrics["f1_14_micro"]).startswith(
            f"{100 * f1_score(y_true, y_pred, average='micro', zero_division=0):.1f} (")


def pdf_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.fail("pdftotext not found: apt-get install poppler-utils (scripts/test.sh does)")
    out = subprocess.run(["pdftotext", "-raw", str(path), "-"], check=True,
                         capture_output=True, text=True).stdout
    return " ".join(out.split())


def test_the_pdf_has_the_section(computed, tmp_path) -> None:
    world, run = computed
    context = build_context(world.trial, figures=True, mixed=False)
    path = tmp_path / "report.pdf"
    render_pdf(context, path)
    text = pdf_text(path)
    start = text.index("Report generation metrics Run ")
    section = text[start:]
    assert "(Supplementary Table 3 layout)" in section
    assert "RULE-BASED labeller" in section and f"Seed {SEED};" in section
    for row in table3_rows(run):
        for value in row[2:4]:  # the F1-14 cells, each whole in its table cell
            assert value in section, value
    assert "not computed: its model weights are not configured" in section
    assert "Agreement with the gold-standard labels: Cohen's kappa" in section
    assert "ROC curves per finding against the gold-standard labels" in section
    assert "Labeller validation: F1 per finding against the gold-standard labels" in section
    assert "Report metrics: run " in section  # provenance
    images = subprocess.run(["pdfimages", "-list", str(path)], check=True,
                            capture_output=True, text=True).stdout
    assert len(images.splitlines()) > 2  # header lines, then at least one image (the ROC)


def test_no_run_says_how_to_compute_one(world, client) -> None:
    context = build_context(world.trial, figures=False, mixed=False)
    section = context["sections"][-1]
    assert section["title"] == "Report generation metrics" and not section["tables"]
    assert section["intro"] == [metrics_section.not_computed_text(world.trial.slug)]
    assert (f"manage.py report_metrics --trial {world.trial.slug} --out DIR"
            in section["intro"][0])
    assert context["provenance"]["metrics_run"] is None
    client.force_login(world.statistician)
    page = plain(client.get(f"/analysis/{world.trial.slug}/").content)
    assert "Not computed yet: no report metrics run is stored for this trial." in page
    form = page[page.index('id="compute-metrics"'):]
    assert 'name="csrfmiddlewaretoken"' in form
    assert re.search(r'<option value="rules" selected>Rule-based labeller \(rule-based',
                     form), form[:800]
    assert 'name="seed"' in form
    # no run: no metric tables in the exports
    archive = zipfile.ZipFile(io.BytesIO(
        client.get(f"/analysis/{world.trial.slug}/export.csv.zip").content))
    assert "report_metrics.csv" not in archive.namelist()


def test_the_compute_form_runs_for_the_trials_statisticians_only(world, client) -> None:
    trial = world.trial
    url = f"/analysis/{trial.slug}/metrics/compute/"
    page = f"/analysis/{trial.slug}/"
    reader = MembershipFactory(trial=trial, role=Role.READER,
                               user=UserFactory(username="reader-metrics")).user
    outsider = UserFactory(username="outsider-metrics")

    response = client.post(url, {"labeller": "rules", "seed": "5"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(reader)
    assert client.post(url, {"labeller": "rules", "seed": "5"}).status_code == 403
    client.force_login(outsider)
    assert client.post(url, {"labeller": "rules", "seed": "5"}).status_code == 404
    client.force_login(world.statistician)
    assert client.get(url).status_code == 405  # a GET computes nothing
    assert not MetricsRun.objects.filter(trial=trial).exists()

    response = client.post(url, {"labeller": "rules", "seed": "12345"})
    assert response.status_code == 302
    assert response["Location"] == f"{page}#report-metrics"
    run = compute.latest(trial)
    assert (run.seed, run.created_by, run.labeller.kind) == (12345, world.statistician, "rules")
    assert AuditEvent.objects.filter(action="metrics.computed").count() == 1
    shown = plain(client.get(page).content)
    assert f"Report metrics computed (run {run.pk}) with the rule-based labeller" in shown
    assert "seed 12345," in shown and f"Seed 12345; {compute.RESAMPLES} bootstrap" in shown
    # the rule-based labeller exists now: it is the form's default by its id
    assert re.search(rf'<option value="{run.labeller.pk}" selected>', shown)

    # an empty seed: a random one, stored and shown
    coordinator = MembershipFactory(trial=trial, role=Role.COORDINATOR,
                                    user=UserFactory(username="coord-metrics")).user
    client.force_login(coordinator)
    assert client.post(url, {"labeller": str(run.labeller.pk), "seed": ""}).status_code == 302
    second = compute.latest(trial)
    assert second.pk != run.pk and second.created_by == coordinator
    shown = plain(client.get(page).content)
    assert f"seed {second.seed} (random)" in shown and f"Run {second.pk}, computed" in shown

    # a bad seed is refused with a message, nothing computed
    assert client.post(url, {"labeller": str(run.labeller.pk), "seed": "-1"}
                       ).status_code == 302
    assert ("Report metrics not computed: seed: Ensure this value is greater than or equal "
            "to 0." in plain(client.get(page).content))
    assert MetricsRun.objects.filter(trial=trial).count() == 2

    # a locked trial: the analysis goes on (the lock is when it happens)
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.LOCKED)
    assert client.post(url, {"labeller": str(run.labeller.pk), "seed": "3"}).status_code == 302
    assert "Report metrics computed" in plain(client.get(page).content)
    assert MetricsRun.objects.filter(trial=trial).count() == 3


def test_the_exports_carry_the_metric_tables_with_every_column_described(computed,
                                                                         client) -> None:
    world, run = computed
    client.force_login(world.statistician)
    url = f"/analysis/{world.trial.slug}/"
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"{url}export.csv.zip").content))
    names = set(archive.namelist())
    assert names >= {f"{t}.csv" for t in datasets.METRIC_TABLES}
    dictionary = pd.read_csv(io.BytesIO(archive.read(datasets.DICTIONARY_CSV)), dtype=str,
                             keep_default_na=False)
    described = set(zip(dictionary.table, dictionary.column, strict=True))
    assert not (dictionary.description == "(not documented)").any()
    for table in datasets.METRIC_TABLES:
        frame = pd.read_csv(io.BytesIO(archive.read(f"{table}.csv")))
        assert len(frame.columns), table
        for column in frame.columns:
            assert (table, column) in described, (table, column)
            assert dictionary.loc[(dictionary.table == table) & (dictionary.column == column),
                                  "type"].iloc[0], (table, column)
    report_metrics = pd.read_csv(io.BytesIO(archive.read("report_metrics.csv")))
    (comparison,) = run.results["comparisons"]
    model_a = report_metrics[report_metrics.source == "modelA"].iloc[0]
    stored = comparison["sources"][0]["metrics"]["f1_14_micro"]
    assert model_a.f1_14_micro == pytest.approx(stored["value"])
    assert model_a.radgraph_note.startswith("not computed: ")
    per_report = pd.read_csv(io.BytesIO(archive.read("report_level_metrics.csv")))
    assert len(per_report) == 2 * len(GOLD)
    assert {"bleu1", "rouge_l", "pleural_effusion", "ref_pleural_effusion"} <= set(
        per_report.columns)
    assert len(pd.read_csv(io.BytesIO(archive.read("roc_points.csv")))) > 0

    sheets = pd.read_excel(io.BytesIO(client.get(f"{url}export.xlsx").content),
                           sheet_name=None)
    assert set(datasets.METRIC_TABLES) <= set(sheets)
    sheet_dictionary = sheets["data dictionary"]
    for table in datasets.METRIC_TABLES:
        documented = set(sheet_dictionary.loc[sheet_dictionary.table == table, "column"])
        assert set(sheets[table].columns) <= documented, table


def tick(trial: Trial, case_id: str, arm: str, findings: list[str]) -> None:
    Reading.objects.filter(assignment__case__trial=trial, assignment__case__case_id=case_id,
                           assignment__arm=arm).update(labels=findings)


def test_complex_cases_use_the_gold_labels_when_the_trial_has_them(tmp_path) -> None:
    world = build_campaign_world(tmp_path / "dicom", cases=3, raters=2)
    trial = world.trial
    case_ids = sorted(datasets.cases(trial)["case"])
    first, second, third = case_ids
    # by the readers' ticks only the first case is complex
    tick(trial, first, "ai_assisted", ["Cardiomegaly", "Edema", "Pleural Effusion"])
    tick(trial, second, "scp", ["Atelectasis"])

    readings = datasets.readings(trial)
    cases = datasets.cases(trial, readings_frame=readings)
    by_case = cases.set_index("case")
    assert by_case.loc[first, "complex_case"] and not by_case.loc[second, "complex_case"]
    assert set(by_case["complex_basis"]) == {datasets.READER_TICKS}
    assert by_case["n_findings_gold"].isna().all()
    summary = summarize(datasets.ratings(trial), readings, cases, mixed=False)
    definition = summary["complex_case_definition"]
    assert definition["basis"] == "reader_ticks"
    assert "any reader ticked >= 3 findings" in summary["notes"][-1]
    assert summary["subgroups"]["complex_cases"]["n_cases"] == 1
    assert summary["reading_time"]["n_complex_cases"] == 1

    # a gold set labels two of the three cases: now the second is complex, the first not,
    # and the third (read, not labelled) is left out of the subgroup and counted
    gold = {first: ("Cardiomegaly",), second: ("Atelectasis", "Consolidation", "Pneumonia")}
    import_labels(trial, labels_csv(gold), name="Gold", gold=True)
    readings = datasets.readings(trial)
    cases = datasets.cases(trial, readings_frame=readings)
    by_case = cases.set_index("case")
    assert not by_case.loc[first, "complex_case"]
    assert by_case.loc[second, "complex_case"]
    assert pd.isna(by_case.loc[third, "complex_case"])
    assert list(by_case["complex_basis"]) == [datasets.GOLD_LABELS, datasets.GOLD_LABELS,
                                              datasets.NO_GOLD_LABELS]
    assert list(by_case["n_findings_gold"].astype(object).where(
        by_case["n_findings_gold"].notna(), None)) == [1, 3, None]
    summary = summarize(datasets.ratings(trial), readings, cases, mixed=False)
    definition = summary["complex_case_definition"]
    assert definition == {**definition, "basis": "gold_labels", "n_labelled": 2, "n_complex": 1,
                          "n_read_without_gold_labels": 1}
    assert "in the trial's gold-standard labels (2 cases labelled, 1 complex)" in definition[
        "text"]
    assert "1 read case(s) have no gold labels and are left out" in definition["text"]
    assert summary["notes"][-1] == definition["text"]
    assert summary["subgroups"]["complex_cases"]["n_cases"] == 1
    assert summary["reading_time"]["n_complex_cases"] == 1
    # the report says which definition it used (methods notes and the subgroup table)
    context = build_context(trial, figures=False, mixed=False)
    assert definition["text"] in context["notes"]
    subgroup = next(t for t in context["tables"] if t.name == "subgroups")
    assert definition["text"] in subgroup.note
    dictionary = datasets.data_dictionary({"cases": cases}).set_index("column")
    assert "gold" in dictionary.loc["complex_case", "description"]
    assert "no_gold_labels" in dictionary.loc["complex_basis", "description"]
