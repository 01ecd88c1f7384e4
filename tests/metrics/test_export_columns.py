"""The metrics data dictionary lists exactly the columns the exports write.

``analysis.datasets.METRIC_DICTIONARY`` is the data dictionary of the metric tables (the
*data dictionary* sheet, ``data_dictionary.csv`` and the statistician's guide are made from
it); ``metrics.exports`` writes the tables. A column in one and not the other is either data
nobody can interpret or a documented column that never exists (as the per-report RadGraph,
CheXbert and GREEN columns, which no run computes). Checked on a full run (two models, gold
labels, probabilities), on a run of a trial with nothing to compare, and through the CSV zip
the statistician downloads.
"""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from analysis import datasets
from metrics import compute, exports, model_metrics
from tests.analysis.test_report_metrics import make_world, run_metrics
from tests.support.factories import TrialFactory

pytestmark = pytest.mark.django_db

NEVER_PER_REPORT = [key for key in model_metrics.SPECS if key not in model_metrics.COMPUTED]


@pytest.fixture
def world_run():
    world = make_world()
    return world, run_metrics(world.trial, by=world.statistician)


def test_the_written_columns_are_exactly_the_dictionary(world_run) -> None:
    _world, run = world_run
    results = run.results
    assert results["comparisons"] and results["kappa"] and results["roc"]
    raw, written = exports.raw_tables(results), exports.tables(results)
    assert list(written) == list(datasets.METRIC_TABLES) == list(datasets.METRIC_DICTIONARY)
    for table, frame in written.items():
        assert len(frame), table
        assert list(frame.columns) == list(datasets.METRIC_DICTIONARY[table]), table
        # nothing the run computed is lost on the way: every raw column is documented
        assert set(raw[table].columns) <= set(frame.columns), table
        for column, (kind, text) in datasets.METRIC_DICTIONARY[table].items():
            assert kind in ("text", "number", "integer") and len(text) > 10, (table, column)


def test_no_per_report_column_for_a_metric_never_computed(world_run) -> None:
    _world, run = world_run
    assert NEVER_PER_REPORT == ["radgraph", "chexbert", "green"]
    written = exports.tables(run.results)
    per_report = written["report_level_metrics"]
    documented = datasets.METRIC_DICTIONARY["report_level_metrics"]
    for key in NEVER_PER_REPORT:
        assert key not in per_report.columns and key not in documented
        # the run says why, in report_metrics' note (empty value and CI)
        summary = written["report_metrics"]
        assert summary[key].isna().all() and summary[f"{key}_ci_low"].isna().all()
        assert summary[f"{key}_note"].str.startswith("not computed: ").all()
    # BERTScore is computed per report when configured: its column is there (empty here)
    assert "bertscore" in per_report.columns and per_report["bertscore"].isna().all()
    # a metric with a value has an empty note (the column is always there)
    assert written["report_metrics"]["rouge_l_note"].isna().all()
    assert written["report_metrics"]["rouge_l"].notna().all()


def test_a_run_with_nothing_to_compare_keeps_every_documented_column() -> None:
    from metrics import jobs

    trial = TrialFactory()
    results = compute.compute(trial, jobs.rules_labeller(trial), seed=1, resamples=100,
                              permutations=100)
    assert not results["comparisons"] and not results["roc"]
    for table, frame in exports.tables(results).items():
        assert len(frame) == 0
        assert list(frame.columns) == list(datasets.METRIC_DICTIONARY[table]), table


def test_auc_reason_column_is_written_even_when_every_auc_was_computed() -> None:
    results = {"comparisons": [], "model_metrics": {}, "kappa": [], "labeller_validation": [],
               "report_columns": list(compute.REPORT_COLUMNS), "reports": [],
               "roc": [{"source": "m", "finding": "Edema", "n": 4, "auc": 0.75, "se": 0.1,
                        "ci_low": 0.55, "ci_high": 0.95, "n_pos": 2, "n_neg": 2,
                        "fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}]}
    auc = exports.tables(results)["auc"]
    assert list(auc.columns) == list(datasets.METRIC_DICTIONARY["auc"])
    assert auc.loc[0, "auc"] == 0.75 and pd.isna(auc.loc[0, "reason"])


def test_the_download_and_its_data_dictionary_agree(world_run, client) -> None:
    world, _run = world_run
    client.force_login(world.statistician)
    archive = zipfile.ZipFile(io.BytesIO(
        client.get(f"/analysis/{world.trial.slug}/export.csv.zip").content))
    dictionary = pd.read_csv(io.BytesIO(archive.read(datasets.DICTIONARY_CSV)), dtype=str,
                             keep_default_na=False)
    for table in datasets.METRIC_TABLES:
        header = list(pd.read_csv(io.BytesIO(archive.read(f"{table}.csv")), nrows=0).columns)
        described = list(dictionary.loc[dictionary.table == table, "column"])
        assert header == described == list(datasets.METRIC_DICTIONARY[table]), table
