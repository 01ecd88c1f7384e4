"""Metrics that need a trained model's weights (RadGraph F1, CheXbert labels, BERTScore, GREEN).

They are optional: the weights are large, licensed separately and not downloadable from a
hospital's network, so the platform never fetches them. Each metric names the setting that
points at its weights; until that is set (and its package installed: ``pip install
'.[model-metrics]'``), every report says "not computed: <reason>" for it, never a number.

BERTScore is computed with its maintained package (``bert-score``) from a local model folder
(``METRICS_BERTSCORE_MODEL``, a Hugging Face folder: config, weights, tokenizer), on the CPU,
without baseline rescaling, from the layer ``METRICS_BERTSCORE_LAYER`` (default: the last).
RadGraph, CheXbert and GREEN are not wired yet: their packages load fixed Hugging Face
repositories, so they say why they were not computed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from config import env


@dataclass(frozen=True)
class Spec:
    title: str
    setting: str  # environment variable with the weights' folder
    package: str  # the metric's maintained package (import name)
    extra: str  # what to pip install


SPECS = {
    "radgraph": Spec("RadGraph F1", "METRICS_RADGRAPH_MODEL", "radgraph", "radgraph"),
    "chexbert": Spec("CheXbert labels", "METRICS_CHEXBERT_MODEL", "f1chexbert", "f1chexbert"),
    "bertscore": Spec("BERTScore", "METRICS_BERTSCORE_MODEL", "bert_score", "bert-score"),
    "green": Spec("GREEN", "METRICS_GREEN_MODEL", "green_score", "green-score"),
}


def reason(key: str) -> str:
    """Why the metric is not computed (every model metric needs its weights configured)."""
    spec = SPECS[key]
    folder = env.text(spec.setting)
    if not folder:
        return (f"not computed: its model weights are not configured ({spec.setting} is not "
                f"set)")
    if not os.path.isdir(folder):
        return f"not computed: {spec.setting} names {folder!r}, which is not a folder"
    if importlib.util.find_spec(spec.package) is None:
        return (f"not computed: the package {spec.package!r} is not installed (pip install "
                f"{spec.extra})")
    if key not in COMPUTED:
        return ("not computed: the platform does not run this metric's package yet (it loads "
                "fixed Hugging Face repositories)")
    return ""


COMPUTED = ("bertscore",)


def available(key: str) -> bool:
    return not reason(key)


def status() -> dict[str, dict]:
    """Each model metric: its title and why it was not computed, or the model that computed it
    (folder, layer, SHA-256 of the weights)."""
    found = {}
    for key, spec in SPECS.items():
        why = reason(key)
        found[key] = ({"title": spec.title, "value": None, "reason": why} if why else
                      {"title": spec.title, "computed": True, **describe(key)})
    return found


def _weights_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.suffix in (".safetensors", ".bin", ".json", ".txt") and path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _layer(folder: Path) -> int:
    chosen = env.text("METRICS_BERTSCORE_LAYER")
    if chosen:
        return int(chosen)
    return int(json.loads((folder / "config.json").read_text())["num_hidden_layers"])


def describe(key: str) -> dict:
    folder = Path(env.text(SPECS[key].setting))
    return {"model": str(folder), "layer": _layer(folder),
            "weights_sha256": _weights_hash(folder)}


@lru_cache(maxsize=2)
def _scorer(folder: str, layer: int):
    from bert_score import BERTScorer

    return BERTScorer(model_type=folder, num_layers=layer, device="cpu", batch_size=32)


def bertscore(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-report BERTScore F1 (bert-score's own computation, no baseline rescaling)."""
    folder = Path(env.text(SPECS["bertscore"].setting))
    scorer = _scorer(str(folder), _layer(folder))
    _, _, f1 = scorer.score(list(hypotheses), list(references))
    return f1.numpy().astype(float)
