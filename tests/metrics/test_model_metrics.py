"""Model-based metrics: BERTScore through its package from a local model folder (a tiny BERT
this test builds), and "not computed" with the reason for everything else.

The model is random (no download): the test checks the loading and scoring path, that the
stored values are bert-score's own (called here directly), and what the report says.
"""

from __future__ import annotations

import numpy as np
import pytest

from metrics import compute, exports, jobs, model_metrics
from tests.support.metrics_world import SENTENCES, build_metrics_world

WORDS = sorted({w for text in SENTENCES.values() for w in text.lower().replace(".", " . ")
                .replace(",", " , ").split()}
               | {"the", "lungs", "are", "clear", "no", "pleural", "effusion", "or",
                  "pneumothorax", "heart", "size", "is", "normal", "acute", "cardiopulmonary",
                  "abnormality", "abnormal", "chest", "radiograph"})


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    torch = pytest.importorskip("torch", reason="the model-metrics extra is not installed")
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    BertTokenizer(str(vocab), model_max_length=128).save_pretrained(folder)
    return str(folder)


def test_every_model_metric_says_why_without_weights(monkeypatch) -> None:
    for spec in model_metrics.SPECS.values():
        monkeypatch.delenv(spec.setting, raising=False)
    found = model_metrics.status()
    assert set(found) == {"radgraph", "chexbert", "bertscore", "green"}
    assert found["bertscore"]["reason"] == (
        "not computed: its model weights are not configured (METRICS_BERTSCORE_MODEL is not "
        "set)")
    monkeypatch.setenv("METRICS_RADGRAPH_MODEL", "/nonexistent/radgraph")
    assert model_metrics.reason("radgraph") == (
        "not computed: METRICS_RADGRAPH_MODEL names '/nonexistent/radgraph', which is not a "
        "folder")


def test_bertscore_from_a_local_model_equals_the_package(db, tiny_bert, monkeypatch) -> None:
    from bert_score import score

    monkeypatch.setenv("METRICS_BERTSCORE_MODEL", tiny_bert)
    world = build_metrics_world(cases=6, gold=False, probabilities=False)
    labeller = jobs.rules_labeller(world.trial)
    found = compute.compute(world.trial, labeller, seed=2, resamples=100, permutations=100)
    cases = sorted(world.reports["published"])
    hyps = ["\n".join(world.reports["modelA"][c]) for c in cases]
    refs = ["\n".join(world.reports["published"][c]) for c in cases]
    _, _, f1 = score(hyps, refs, model_type=tiny_bert, num_layers=2, device="cpu")
    entry = next(s for s in found["comparisons"][0]["sources"] if s["source"] == "modelA")
    bert = entry["metrics"]["bertscore"]
    assert bert["value"] == pytest.approx(float(np.mean(f1.numpy())), abs=1e-6)
    assert bert["ci_low"] <= bert["value"] <= bert["ci_high"]
    status = found["model_metrics"]["bertscore"]
    assert status["computed"] and status["layer"] == 2 and len(status["weights_sha256"]) == 64
    assert found["model_metrics"]["radgraph"]["value"] is None
    table = exports.tables(found)
    assert table["report_metrics"]["bertscore"].notna().all()
    per_report = table["report_level_metrics"]
    rows = per_report[per_report["source"] == "modelA"].sort_values("case_id")
    np.testing.assert_allclose(rows["bertscore"].to_numpy(), f1.numpy(), atol=1e-6)
    assert any(p["metric"] == "bertscore" for p in found["comparisons"][0]["paired"])


def test_an_identical_report_scores_one(tiny_bert, monkeypatch) -> None:
    monkeypatch.setenv("METRICS_BERTSCORE_MODEL", tiny_bert)
    values = model_metrics.bertscore(["The heart is enlarged."],
                                     ["The heart is enlarged."])
    assert values[0] == pytest.approx(1.0, abs=1e-5)
