"""The metrics commands: label_reports, report_metrics, import_labels, import_probabilities."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from metrics.models import ChatJob, Labeller, Labelling, LabelSet, MetricsRun
from tests.support.fake_openai import Reply
from tests.support.metrics_world import MetricsWorld, build_metrics_world
from trial.findings import FINDINGS


@pytest.fixture
def world(db) -> MetricsWorld:
    return build_metrics_world(cases=12)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_label_reports_with_the_rule_based_labeller_is_idempotent(world) -> None:
    out, err = run("label_reports", "--trial", world.trial.slug)
    assert "Rule-based labeller" in out and "labelled" in err
    first = Labelling.objects.count()
    assert first > 0 and not Labelling.objects.exclude(status=ChatJob.Status.DONE).exists()
    out, _ = run("label_reports", "--trial", world.trial.slug)
    assert f"{first} distinct texts: 0 new" in out
    assert Labelling.objects.count() == first


def test_label_reports_with_an_llm_labeller_waits_and_reports_failures(world,
                                                                       fake_model) -> None:
    Labeller.objects.create(trial=world.trial, name="LLM", kind=Labeller.Kind.LLM,
                            base_url=fake_model.url, model_name="m", max_attempts=1)
    labels = json.dumps(dict.fromkeys(FINDINGS, 0))
    fake_model.default = Reply(content=labels)
    fake_model.script([Reply(content="not json")])
    with pytest.raises(CommandError, match="1 failed"):
        run("label_reports", "--trial", world.trial.slug, "--labeller", "LLM", "--wait")
    failed = Labelling.objects.get(status=ChatJob.Status.FAILED)
    assert "not JSON" in failed.error
    out, _ = run("label_reports", "--trial", world.trial.slug, "--labeller", "LLM",
                 "--retry-failed", "--wait")
    assert "0 failed" in out
    assert not Labelling.objects.filter(status=ChatJob.Status.FAILED).exists()


def test_report_metrics_stores_a_run_and_writes_the_tables(world, tmp_path) -> None:
    out, _ = run("report_metrics", "--trial", world.trial.slug, "--out", str(tmp_path),
                 "--seed", "7", "--resamples", "200", "--permutations", "200")
    stored = MetricsRun.objects.get()
    assert (stored.seed, stored.resamples) == (7, 200)
    assert "modelA (n=12): F1-14 micro" in out
    files = {p.name for p in tmp_path.iterdir()}
    assert {"report_metrics.json", "report_metrics.csv", "finding_metrics.csv", "kappa.csv",
            "auc.csv", "roc_points.csv", "labeller_validation.csv",
            "paired_comparisons.csv", "report_level_metrics.csv"} <= files
    table = pd.read_csv(tmp_path / "report_metrics.csv")
    assert list(table["source"]) == ["modelA", "modelB"]
    assert table.loc[0, "f1_14_micro"] == pytest.approx(
        stored.results["comparisons"][0]["sources"][0]["metrics"]["f1_14_micro"]["value"])
    assert json.loads((tmp_path / "report_metrics.json").read_text())["seed"] == 7


def test_report_metrics_refuses_an_unknown_labeller(world, tmp_path) -> None:
    with pytest.raises(CommandError, match="no labeller 'nope'"):
        run("report_metrics", "--trial", world.trial.slug, "--out", str(tmp_path),
            "--labeller", "nope")


def test_import_labels_command_reports_every_problem(db, tmp_path) -> None:
    world = build_metrics_world(cases=3, gold=False, probabilities=False)
    good = tmp_path / "gold.csv"
    good.write_text("case_id," + ",".join(FINDINGS) + "\n"
                    + "\n".join(f"R00{n}," + ",".join(["0"] * 13 + ["1"]) for n in (1, 2, 3))
                    + "\n")
    out, _ = run("import_labels", str(good), "--trial", world.trial.slug, "--name", "Gold",
                 "--gold")
    assert out.strip() == "Label set 'Gold' (gold standard): 3 cases."
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id," + ",".join(FINDINGS) + "\nR009," + ",".join(["0"] * 14) + "\n")
    with pytest.raises(CommandError, match="line 2: no case 'R009'"):
        run("import_labels", str(bad), "--trial", world.trial.slug, "--name", "Other")
    assert LabelSet.objects.count() == 1


def test_import_probabilities_command(db, tmp_path) -> None:
    world = build_metrics_world(cases=2, gold=False, probabilities=False)
    path = tmp_path / "p.csv"
    path.write_text("case_id,source,Edema\nR001,m,0.3\nR002,m,0.9\n")
    out, _ = run("import_probabilities", str(path), "--trial", world.trial.slug)
    assert out.strip() == "Imported 2 rows of probabilities."


def test_label_set_from_the_reference_reports_as_labelled(world) -> None:
    from metrics import rules

    with pytest.raises(CommandError, match="have no labels from Rule-based labeller yet"):
        run("import_labels", "--trial", world.trial.slug, "--name", "From reports",
            "--from-reports")
    run("label_reports", "--trial", world.trial.slug)
    out, _ = run("import_labels", "--trial", world.trial.slug, "--name", "From reports",
                 "--from-reports")
    assert out.strip() == "Label set 'From reports': 12 cases."
    made = LabelSet.objects.get(name="From reports")
    assert made.provenance == LabelSet.Provenance.FINAL_REPORTS and not made.gold
    row = made.cases.get(case__case_id="R003")
    text = "\n".join(world.reports["published"]["R003"])
    assert row.labels == rules.label_report(text)


def test_a_second_gold_set_from_ticks_is_refused(world) -> None:
    with pytest.raises(CommandError, match="already has a gold-standard"):
        run("import_labels", "--trial", world.trial.slug, "--name", "Ticks", "--from-ticks",
            "--gold")


def test_import_labels_needs_exactly_one_source(world, tmp_path) -> None:
    with pytest.raises(CommandError, match="Give one of"):
        run("import_labels", "--trial", world.trial.slug, "--name", "x")
    with pytest.raises(CommandError, match="Give one of"):
        run("import_labels", str(tmp_path / "a.csv"), "--trial", world.trial.slug,
            "--name", "x", "--from-ticks")


def test_report_metrics_tables_are_neutralised_for_spreadsheets(world, tmp_path) -> None:
    """A source name typed by someone (here in a probabilities file) is never a formula."""
    from metrics.imports import import_probabilities

    import_probabilities(world.trial, 'case_id,source,Edema\nR001,"=HYPERLINK(""x"")",0.3\n'
                                      'R002,"=HYPERLINK(""x"")",0.8\n')
    run("report_metrics", "--trial", world.trial.slug, "--out", str(tmp_path), "--seed", "1",
        "--resamples", "100", "--permutations", "100")
    text = (tmp_path / "auc.csv").read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
