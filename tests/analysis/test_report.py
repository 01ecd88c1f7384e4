"""The report from a real (small) trial: files, sections, provenance, exports, the command and
the statistician's page with its access rules."""

from __future__ import annotations

import io
import json
import random
import zipfile

import pandas as pd
import pytest
from django.core.management import call_command

from analysis import datasets
from analysis.report import build_report, figure_data
from analysis.summary import ARMS, summarize
from rating import ratings
from rating.models import RaterItem
from tests.analysis.test_summary import make_frames
from tests.support.campaign_world import build_campaign_world
from tests.support.factories import MembershipFactory, UserFactory
from trial.models import Case, Role

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {"notes", "counts", "flow", "baseline", "outcomes", "kendall", "preference",
                "reading_time", "positive_rates", "retrospective", "source_identification",
                "provenance", "trial"}


def rate_everything(world, seed: int = 3) -> None:
    """Every rater answers every item, with varied scores (so the statistics are defined)."""
    rng = random.Random(seed)
    for ri in RaterItem.objects.filter(campaign=world.campaign).select_related("item"):
        values = {}
        for code in ri.item.instruments:
            values[code] = {
                "likert": str(rng.randint(2, 5)), "radpeer": str(rng.randint(2, 5)),
                "acceptability": rng.choice("ABCD"), "preference": rng.choice("AB"),
                "source_id": rng.choice("AB"),
                "errors": {"omitted_finding": {"significant": rng.randint(0, 2),
                                               "insignificant": rng.randint(0, 2)}},
            }[code]
        ratings.open_item(ri)
        ratings.submit(ri, values, by=ri.rater.user)


@pytest.fixture
def world(tmp_path):
    world = build_campaign_world(tmp_path / "dicom", cases=4, raters=4, include_ai_alone=True)
    site = world.read.cases[0].site
    Case.objects.create(trial=world.trial, site=site, case_id="X-1",
                        status=Case.Status.EXCLUDED, exclusion_reason="Substandard image")
    rate_everything(world)
    return world


def test_build_report_writes_every_output(world, tmp_path) -> None:
    out = tmp_path / "report"
    files = build_report(world.trial, out, mixed=False)
    for written in files.all():
        assert written.exists() and written.stat().st_size > 0, written
    summary = json.loads(files.summary.read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["flow"]["screened"] == 5
    assert summary["flow"]["exclusion_reasons"] == {"Substandard image": 1}
    assert summary["flow"]["read_per_arm"] == {"ai_assisted": 4, "scp": 4}
    assert summary["flow"]["rated_per_arm"] == {"ai_assisted": 4, "scp": 4}
    quality = summary["outcomes"]["quality"]
    assert quality["per_arm"]["ai_assisted"]["n"] == 4
    assert quality["mixed_model"]["available"] is False
    comparisons = summary["preference"]["comparisons"]
    assert comparisons["prospective: ai_assisted vs scp"]["available"]
    assert comparisons["prospective: ai_assisted vs scp"]["n_raters"] == 2
    assert summary["provenance"]["model_endpoints"][0]["fingerprint"]

    html = files.html.read_text()
    assert 'id="provenance"' in html and summary["provenance"]["data_sha256"] in html
    assert "data:image/png;base64," in html
    assert {p.name for p in files.figures} >= {"quality_by_arm.png", "reading_time_by_arm.png",
                                               "preference.png"}
    assert files.pdf.read_bytes().startswith(b"%PDF")

    for table in files.tables:
        assert len(pd.read_csv(table)) >= 1
    ratings = pd.read_csv(out / "data" / "ratings.csv")
    assert list(ratings.columns) == datasets.RATING_COLUMNS
    long = pd.read_csv(out / "data" / "long.csv")
    assert list(long.columns) == datasets.LONG_COLUMNS
    assert set(long.instrument) >= {"likert", "radpeer", "reading_seconds"}
    sheets = pd.read_excel(out / "data" / "data.xlsx", sheet_name=None)
    assert "data dictionary" in sheets
    dictionary = sheets["data dictionary"]
    assert not (dictionary.description == "(not documented)").any()
    # a row per column, then the formula-injection note on every text cell
    assert len(dictionary) == 1 + sum(len(sheets[t].columns) for t in
                                      ("cases", "readings", "ratings", "long"))
    assert dictionary.iloc[-1].description == datasets.NEUTRALISATION_NOTE


def test_snapshot_hash_is_over_the_exported_csvs(world, tmp_path) -> None:
    import hashlib

    files = build_report(world.trial, tmp_path / "r", figures=False, pdf=False, mixed=False)
    summary = json.loads(files.summary.read_text())
    digest = hashlib.sha256()
    for name in ("cases", "readings", "ratings", "long"):
        digest.update((tmp_path / "r" / "data" / f"{name}.csv").read_bytes())
    assert summary["provenance"]["data_sha256"] == digest.hexdigest()
    assert files.pdf is None and not files.figures


def test_report_before_any_rating_says_what_is_missing(tmp_path) -> None:
    world = build_campaign_world(tmp_path / "dicom", cases=2, raters=2)
    files = build_report(world.trial, tmp_path / "r", pdf=False)
    summary = json.loads(files.summary.read_text())
    quality = summary["outcomes"]["quality"]
    assert (quality["available"], quality["reason"], quality["instrument"]) == (
        False, "no ratings of the arms' reports yet", "likert")
    assert quality["basis"]["student"] == "exploratory (no signed analysis plan)"
    assert summary["preference"]["available"] is False
    assert "not available" in files.html.read_text()


def test_analyze_command_prints_the_files(world, tmp_path) -> None:
    out = io.StringIO()
    call_command("analyze", "--trial", world.trial.slug, "--out", str(tmp_path / "cmd"),
                 "--no-pdf", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "summary.json" in text and "report.html" in text and "report.pdf" not in text
    assert (tmp_path / "cmd" / "figures" / "quality_by_arm.png").exists()
    summary = json.loads((tmp_path / "cmd" / "summary.json").read_text())
    assert "mixed_model" in summary["outcomes"]["quality"]


def test_statistician_page_and_access(world, client) -> None:
    trial = world.trial
    url = f"/analysis/{trial.slug}/"
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    statistician = MembershipFactory(trial=trial, role=Role.STATISTICIAN,
                                     user=UserFactory(username="stat")).user
    client.force_login(statistician)
    response = client.get(url)
    assert response.status_code == 200
    assert b'id="provenance"' in response.content and b"data:image/png" in response.content
    xlsx = client.get(f"{url}export.xlsx")
    assert xlsx.status_code == 200
    assert "data dictionary" in pd.read_excel(io.BytesIO(xlsx.content), sheet_name=None)
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"{url}export.csv.zip").content))
    assert set(archive.namelist()) == {"cases.csv", "readings.csv", "ratings.csv", "long.csv",
                                       "report_texts.csv", "data_dictionary.csv"}
    assert client.get(f"{url}report.pdf").content.startswith(b"%PDF")

    coordinator = MembershipFactory(trial=trial, role=Role.COORDINATOR,
                                    user=UserFactory(username="coord-analysis")).user
    client.force_login(coordinator)
    assert client.get(url).status_code == 200

    client.force_login(world.read.readers["scp"].user)
    assert client.get(url).status_code == 403
    assert client.get(f"{url}export.xlsx").status_code == 403
    assert client.get(f"{url}export.csv.zip").status_code == 403
    assert client.get(f"{url}report.pdf").status_code == 403
    client.force_login(world.raters[0].user)
    assert client.get(url).status_code == 403
    client.force_login(UserFactory(username="stranger"))
    assert client.get(url).status_code == 404
    assert client.get(f"{url}report.pdf").status_code == 404
    other_statistician = MembershipFactory(role=Role.STATISTICIAN,
                                           user=UserFactory(username="stat-elsewhere")).user
    assert other_statistician.memberships.get().trial != trial
    client.force_login(other_statistician)
    assert client.get(url).status_code == 404


def test_acr_radpeer_campaign_stays_out_of_the_agreement_figure() -> None:
    """ACR RADPEER 2016's "1" (concur, the best) is a number, the 1-5 scale's worst: the figure
    must leave the campaign out as the tables do."""
    ratings, readings, cases = make_frames(6)
    acr = ratings[ratings.instrument == "radpeer"].assign(campaign=2, answer="1", value=1.0)
    both = pd.concat([ratings, acr], ignore_index=True)

    _title, _ylabel, plotted = figure_data(both, readings, acr_campaigns=[2])["agreement_by_arm"]
    _title, _ylabel, without_acr = figure_data(ratings, readings)["agreement_by_arm"]
    summary = summarize(both, readings, cases, mixed=False, acr_campaigns=[2])
    for arm in ARMS:
        assert plotted[arm].tolist() == without_acr[arm].tolist(), arm
        table = summary["outcomes"]["agreement"]["per_arm"][arm]
        assert len(plotted[arm]) == table["n"] == 6
        assert plotted[arm].mean() == pytest.approx(table["mean"])
    # Not told which campaign is ACR, the 1s would enter (what the figure used to do).
    _title, _ylabel, leaked = figure_data(both, readings)["agreement_by_arm"]
    assert leaked["ai_assisted"].mean() < plotted["ai_assisted"].mean()
