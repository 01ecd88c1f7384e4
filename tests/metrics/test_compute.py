"""Every stored metric against an independent computation on the same texts and labels.

The expected numbers come from the libraries called here (NLTK's corpus_bleu, rouge-score,
scikit-learn's f1_score, cohen_kappa_score and roc_auc_score) on the world's texts, with labels
from the rule-based labeller called directly, never from ``metrics.compute``'s own helpers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nltk.translate.bleu_score import corpus_bleu
from rouge_score import rouge_scorer, tokenize
from sklearn.metrics import cohen_kappa_score, f1_score, roc_auc_score

from metrics import compute, exports, jobs, rules
from metrics.models import Labeller, MetricsRun, Probabilities
from tests.support.metrics_world import MetricsWorld, build_metrics_world
from trial.findings import FINDINGS, NO_FINDING

SEED = 20261201


@pytest.fixture
def world(db) -> MetricsWorld:
    return build_metrics_world()


def text_of(report: tuple[str, str]) -> str:
    return "\n".join(part for part in report if part)


def labels(text: str) -> list[int]:
    found = rules.label_report(text, uncertain="positive")
    return [found[f] for f in FINDINGS]


@pytest.fixture
def results(world) -> dict:
    labeller = jobs.rules_labeller(world.trial)
    texts = [text_of(r) for by_case in world.reports.values() for r in by_case.values()]
    jobs.label(labeller, texts)
    run = compute.run(world.trial, labeller, seed=SEED, resamples=300, permutations=300)
    return MetricsRun.objects.get(pk=run.pk).results


def source(results: dict, name: str) -> dict:
    (comparison,) = results["comparisons"]
    return next(s for s in comparison["sources"] if s["source"] == name)


def pairs(world: MetricsWorld, name: str) -> tuple[list[str], list[str]]:
    cases = sorted(world.reports["published"])
    return ([text_of(world.reports[name][c]) for c in cases],
            [text_of(world.reports["published"][c]) for c in cases])


@pytest.mark.parametrize("name", ["modelA", "modelB"])
def test_bleu_and_rouge_equal_the_libraries(world, results, name) -> None:
    hyps, refs = pairs(world, name)
    tok = [tokenize.tokenize(h, None) for h in hyps]
    ref_tok = [[tokenize.tokenize(r, None)] for r in refs]
    metrics = source(results, name)["metrics"]
    assert metrics["bleu1"]["value"] == pytest.approx(
        corpus_bleu(ref_tok, tok, weights=(1.0,)), abs=1e-12)
    assert metrics["bleu4"]["value"] == pytest.approx(
        corpus_bleu(ref_tok, tok, weights=(0.25,) * 4), abs=1e-12)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = np.mean([scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs,
                                                                              strict=True)])
    assert metrics["rouge_l"]["value"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", ["modelA", "modelB"])
def test_f1_14_and_f1_5_equal_scikit_learn(world, results, name) -> None:
    hyps, refs = pairs(world, name)
    y_hyp = np.array([labels(h) for h in hyps])
    y_ref = np.array([labels(r) for r in refs])
    metrics = source(results, name)["metrics"]
    for average in ("micro", "macro"):
        assert metrics[f"f1_14_{average}"]["value"] == pytest.approx(
            f1_score(y_ref, y_hyp, average=average, zero_division=0), abs=1e-12)
    frequency = pd.Series(y_ref.sum(axis=0), index=FINDINGS).drop(NO_FINDING)
    order = sorted(frequency.index, key=lambda f: (-frequency[f], FINDINGS.index(f)))
    top5 = order[:5]
    assert results["comparisons"][0]["top5"] == top5
    columns = [FINDINGS.index(f) for f in top5]
    for average in ("micro", "macro"):
        assert metrics[f"f1_5_{average}"]["value"] == pytest.approx(
            f1_score(y_ref[:, columns], y_hyp[:, columns], average=average, zero_division=0),
            abs=1e-12)


def test_every_value_has_a_ci_around_it(results) -> None:
    for entry in results["comparisons"][0]["sources"]:
        for key, value in entry["metrics"].items():
            if key == "bertscore":  # no model weights here: not computed (test_model_metrics)
                assert value["value"] is None and value["reason"].startswith("not computed")
                continue
            assert value["ci_low"] <= value["value"] <= value["ci_high"], (entry["source"], key)


def test_the_better_model_scores_higher_and_the_paired_test_says_so(results) -> None:
    a, b = source(results, "modelA")["metrics"], source(results, "modelB")["metrics"]
    assert a["f1_14_micro"]["value"] > b["f1_14_micro"]["value"]
    (row,) = [p for p in results["comparisons"][0]["paired"]
              if p["metric"] == "f1_14_micro"]
    assert (row["a"], row["b"], row["n"]) == ("modelA", "modelB", 40)
    assert row["difference"] == pytest.approx(
        a["f1_14_micro"]["value"] - b["f1_14_micro"]["value"], abs=1e-12)
    assert row["ci_low"] <= row["difference"] <= row["ci_high"]
    assert 0 < row["p"] < 0.05


def test_the_same_seed_gives_the_same_numbers(world, results) -> None:
    labeller = jobs.rules_labeller(world.trial)
    again = compute.compute(world.trial, labeller, seed=SEED, resamples=300, permutations=300)
    assert again["comparisons"] == results["comparisons"]
    other = compute.compute(world.trial, labeller, seed=SEED + 1, resamples=300,
                            permutations=300)
    assert other["comparisons"][0]["sources"][0]["metrics"]["bleu4"]["ci_low"] != (
        results["comparisons"][0]["sources"][0]["metrics"]["bleu4"]["ci_low"])
    assert results["seed"] == SEED and results["resamples"] == 300


def test_kappa_per_finding_equals_scikit_learn(world, results) -> None:
    hyps, _ = pairs(world, "modelB")
    cases = sorted(world.reports["published"])
    gold = np.array([[world.truth[c][f] for f in FINDINGS] for c in cases])
    y = np.array([labels(h) for h in hyps])
    rows = {r["finding"]: r for r in results["kappa"] if r["source"] == "modelB"}
    for i, finding in enumerate(FINDINGS):
        if len(set(gold[:, i])) == 1 and len(set(y[:, i])) == 1:
            assert rows[finding]["kappa"] is None
            continue
        assert rows[finding]["kappa"] == pytest.approx(
            cohen_kappa_score(gold[:, i], y[:, i]), abs=1e-12)
        assert rows[finding]["n"] == len(cases)


def test_auc_per_finding_equals_scikit_learn(world, results) -> None:
    stored = {p.case.case_id: p.values for p in Probabilities.objects.select_related("case")}
    cases = sorted(stored)
    rows = {r["finding"]: r for r in results["roc"] if r["source"] == "modelA"}
    assert NO_FINDING not in rows  # no probability column for it
    for finding in ("Pleural Effusion", "Cardiomegaly", "Lung Opacity"):
        y = [world.truth[c][finding] for c in cases]
        p = [stored[c][finding] for c in cases]
        row = rows[finding]
        assert row["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert 0 <= row["ci_low"] <= row["auc"] <= row["ci_high"] <= 1
        assert row["fpr"][0] == 0 and row["tpr"][-1] == 1


def test_labeller_validation_equals_scikit_learn(world, results) -> None:
    cases = sorted(world.reports["published"])
    gold = np.array([[world.truth[c][f] for f in FINDINGS] for c in cases])
    y = np.array([labels(text_of(world.reports["published"][c])) for c in cases])
    rows = {r["finding"]: r for r in results["labeller_validation"]}
    assert {r["kind"] for r in results["labeller_validation"]} == {"rules"}
    expected = f1_score(gold, y, average=None, zero_division=0)
    for i, finding in enumerate(FINDINGS):
        assert rows[finding]["f1"] == pytest.approx(expected[i], abs=1e-12)
        assert "Rule-based" in rows[finding]["description"]


def test_unlabelled_texts_leave_finding_metrics_not_computed(world, fake_model) -> None:
    llm = Labeller.objects.create(trial=world.trial, name="LLM", kind=Labeller.Kind.LLM,
                                  base_url=fake_model.url, model_name="m")
    found = compute.compute(world.trial, llm, seed=1, resamples=100, permutations=100)
    metrics = found["comparisons"][0]["sources"][0]["metrics"]
    assert metrics["f1_14_micro"]["value"] is None
    assert metrics["f1_14_micro"]["reason"].startswith("not computed: ")
    assert "no labels from LLM yet (run label_reports)" in metrics["f1_14_micro"]["reason"]
    assert metrics["bleu4"]["value"] is not None
    assert found["kappa"] == [] and fake_model.requests == []


def test_model_metrics_say_why_they_were_not_computed(results) -> None:
    radgraph = results["model_metrics"]["radgraph"]
    assert radgraph["value"] is None
    assert radgraph["reason"] == ("not computed: its model weights are not configured "
                                  "(METRICS_RADGRAPH_MODEL is not set)")


def test_without_gold_labels_kappa_and_auc_say_why(db) -> None:
    world = build_metrics_world(cases=8, gold=False, probabilities=False)
    labeller = jobs.rules_labeller(world.trial)
    jobs.label(labeller, [text_of(r) for by in world.reports.values() for r in by.values()])
    found = compute.compute(world.trial, labeller, seed=1, resamples=100, permutations=100)
    assert found["kappa"] == [] and found["roc"] == [] and found["labeller_validation"] == []
    assert found["gold_reason"].startswith("not computed: the trial has no gold-standard")


def test_exports_have_one_row_per_source_and_per_report(world, results) -> None:
    tables = exports.tables(results)
    summary = tables["report_metrics"]
    assert list(summary["source"]) == ["modelA", "modelB"]
    assert summary.loc[0, "radgraph_note"].startswith("not computed")
    reports = tables["report_level_metrics"]
    assert len(reports) == 80
    row = reports[(reports["source"] == "modelB") & (reports["case_id"] == "R001")].iloc[0]
    expected = labels(text_of(world.reports["modelB"]["R001"]))
    assert [row[f.lower().replace(" ", "_")] for f in FINDINGS] == expected
    assert set(tables["kappa"]["source"]) == {"published", "modelA", "modelB"}


def test_paired_p_equals_a_slow_randomisation_with_scikit_learn(world, results) -> None:
    """The approximate randomisation test recomputed case by case: each permutation keeps a
    case's two reports where the seeded uniform is < 0.5, else swaps them, and F1-14 micro of
    both sides comes from scikit-learn."""
    hyps_a, refs = pairs(world, "modelA")
    hyps_b, _ = pairs(world, "modelB")
    y_ref = np.array([labels(r) for r in refs])
    y_a = np.array([labels(h) for h in hyps_a])
    y_b = np.array([labels(h) for h in hyps_b])

    def f1(y):
        return f1_score(y_ref, y, average="micro", zero_division=0)

    observed = f1(y_a) - f1(y_b)
    rng = np.random.default_rng(SEED)
    draws = rng.random((300, len(refs)))
    extreme = 0
    for keep in draws < 0.5:
        side_a = np.where(keep[:, None], y_a, y_b)
        side_b = np.where(keep[:, None], y_b, y_a)
        extreme += abs(f1(side_a) - f1(side_b)) >= abs(observed) - 1e-12
    (row,) = [p for p in results["comparisons"][0]["paired"] if p["metric"] == "f1_14_micro"]
    assert row["difference"] == pytest.approx(observed, abs=1e-12)
    assert row["p"] == pytest.approx((1 + extreme) / 301, abs=1e-12)
