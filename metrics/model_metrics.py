"""Metrics that need a trained model's weights (RadGraph F1, CheXbert labels, BERTScore, GREEN).

They are optional: the weights are large, licensed separately and not downloadable from a
hospital's network, so the platform never fetches them. Each metric names the setting that
points at its weights; until that is set (and its package installed), every report says
"not computed: <reason>" for it, never a number.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass


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
    folder = os.environ.get(spec.setting, "")
    if not folder:
        return (f"not computed: its model weights are not configured ({spec.setting} is not "
                f"set)")
    if not os.path.isdir(folder):
        return f"not computed: {spec.setting} names {folder!r}, which is not a folder"
    if importlib.util.find_spec(spec.package) is None:
        return (f"not computed: the package {spec.package!r} is not installed (pip install "
                f"{spec.extra})")
    return "not computed: scoring with this metric's package is not part of this release"


def status() -> dict[str, dict]:
    """Each model metric's title and why it was not computed."""
    return {key: {"title": spec.title, "value": None, "reason": reason(key)}
            for key, spec in SPECS.items()}
