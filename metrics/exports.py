"""A metrics run as tidy tables: what ``report_metrics --out`` writes and the analysis exports.

One table per kind of result, one row per observation, plain column names: the Supplementary
Table 3 layout (one row per comparison and source), per-finding scores, paired comparisons,
kappa, ROC points, the labeller validation, and the per-report values with their labels.

Every table has exactly the columns of :data:`COLUMNS`, in that order, whatever the run
computed (an empty table included): ``analysis.datasets.METRIC_DICTIONARY`` documents those
columns and nothing else (a test holds the two together).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from trial.findings import FINDINGS

from .compute import NAMES, PER_REPORT_METRICS


def _finding_column(finding: str) -> str:
    return finding.lower().replace(" ", "_")


#: The columns of each exported table, in order (``report_metrics``: four per metric of
#: ``compute.NAMES``, the value, its CI and ``<metric>_note``, empty when it has a value).
COLUMNS: dict[str, tuple[str, ...]] = {
    "report_metrics": ("comparison", "comparison_title", "study", "reference", "source",
                       "source_name", "n_cases",
                       *(f"{key}{suffix}" for key in NAMES
                         for suffix in ("", "_ci_low", "_ci_high", "_note")),
                       "f1_5_findings"),
    "finding_metrics": ("comparison", "source", "n_cases", "finding", "precision", "recall",
                        "f1", "support", "positive_rate", "reference_positive_rate"),
    "paired_comparisons": ("comparison", "a", "b", "metric", "n", "difference", "ci_low",
                           "ci_high", "p"),
    "kappa": ("comparison", "source", "name", "finding", "n", "kappa", "ci_low", "ci_high",
              "positive_rate", "gold_positive_rate"),
    "auc": ("source", "finding", "n", "auc", "se", "ci_low", "ci_high", "n_pos", "n_neg",
            "reason"),
    "roc_points": ("source", "finding", "point", "fpr", "tpr"),
    "labeller_validation": ("labeller", "kind", "description", "finding", "n", "support",
                            "precision", "recall", "f1"),
    "report_level_metrics": ("comparison", "source", "case_id", *PER_REPORT_METRICS,
                             *(_finding_column(f) for f in FINDINGS),
                             *("ref_" + _finding_column(f) for f in FINDINGS)),
}
NOT_IN_RUN = "not computed: not part of this run"


def summary_table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per comparison and source: each metric with its CI (Supplementary Table 3)."""
    rows = []
    for comparison in results["comparisons"]:
        for source in comparison["sources"]:
            row = {"comparison": comparison["key"], "comparison_title": comparison["title"],
                   "study": comparison["study"], "reference": comparison["reference"],
                   "source": source["source"], "source_name": source["name"],
                   "n_cases": source["n"]}
            metrics = {**{key: value for key, value in results["model_metrics"].items()
                          if not value.get("computed")}, **source["metrics"]}
            for key in NAMES:
                value = metrics.get(key) or {"value": None, "reason": NOT_IN_RUN}
                row[key] = value.get("value")
                row[f"{key}_ci_low"] = value.get("ci_low")
                row[f"{key}_ci_high"] = value.get("ci_high")
                row[f"{key}_note"] = (value.get("reason") or NOT_IN_RUN
                                      if value.get("value") is None else None)
            row["f1_5_findings"] = "; ".join(comparison["top5"])
            rows.append(row)
    return pd.DataFrame(rows)


def per_finding_table(results: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"comparison": comparison["key"], "source": source["source"],
                          "n_cases": source["n"], **finding}
                         for comparison in results["comparisons"]
                         for source in comparison["sources"]
                         for finding in source["per_finding"]])


def paired_table(results: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"comparison": comparison["key"], **row}
                         for comparison in results["comparisons"]
                         for row in comparison["paired"]])


def kappa_table(results: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(results["kappa"])


def roc_tables(results: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(AUC per source and finding, ROC curve points)."""
    auc = pd.DataFrame([{k: v for k, v in row.items() if k not in ("fpr", "tpr")}
                        for row in results["roc"]])
    points = pd.DataFrame([{"source": row["source"], "finding": row["finding"],
                            "point": i, "fpr": fpr, "tpr": tpr}
                           for row in results["roc"]
                           for i, (fpr, tpr) in enumerate(zip(row.get("fpr", []),
                                                              row.get("tpr", []), strict=True))])
    return auc, points


def validation_table(results: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(results["labeller_validation"])


def reports_table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per report: its text metrics and the labeller's labels, one column per finding
    for the report and its reference (``ref_`` prefix)."""
    frame = pd.DataFrame(results["reports"], columns=results["report_columns"])
    for prefix, column in (("", "labels"), ("ref_", "reference_labels")):
        bits = frame[column].fillna("")
        for i, finding in enumerate(FINDINGS):
            name = prefix + _finding_column(finding)
            frame[name] = bits.map(lambda b, i=i: int(b[i]) if len(b) == len(FINDINGS)
                                   else pd.NA).astype("Int64")
    return frame.drop(columns=["labels", "reference_labels"])


def raw_tables(results: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Every table by its file stem, with the columns the run's rows give."""
    auc, points = roc_tables(results)
    return {"report_metrics": summary_table(results), "finding_metrics": per_finding_table(
        results), "paired_comparisons": paired_table(results), "kappa": kappa_table(results),
        "auc": auc, "roc_points": points, "labeller_validation": validation_table(results),
        "report_level_metrics": reports_table(results)}


def tables(results: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Every table by its file stem, each with exactly its :data:`COLUMNS` in that order (a
    column no row has is written empty, so an empty table keeps its header)."""
    return {name: frame.reindex(columns=list(COLUMNS[name]))
            for name, frame in raw_tables(results).items()}
