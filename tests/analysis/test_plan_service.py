"""The analysis plan in a real trial: written and signed by a statistician (password), frozen
with its hash, versioned with a reason; the page's access rules; the report and its PDF lead
with the plan's primary campaign and label every number."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from analysis import plans
from analysis.models import AnalysisPlan
from analysis.report import build_report
from tests.analysis.test_report import rate_everything
from tests.support.campaign_world import build_campaign_world
from tests.support.factories import PASSWORD, MembershipFactory, UserFactory
from trial.errors import Invalid
from trial.models import AuditEvent, Role, Signature, Trial
from trial.signatures import SignatureRefused

pytestmark = pytest.mark.django_db

DATA = {"primary_outcomes": ["quality", "agreement", "preference", "reading_time"],
        "secondary_outcomes": ["positive_rates"], "primary_method": "student", "alpha": 0.05,
        "subgroups": ["complex_cases"], "missing_ratings": "available",
        "pooled_campaigns": [], "notes": "As the reference trial.", "reason": ""}


@pytest.fixture
def world(tmp_path):
    world = build_campaign_world(tmp_path / "dicom", cases=4, raters=4)
    world.statistician = MembershipFactory(trial=world.trial, role=Role.STATISTICIAN,
                                           user=UserFactory(username="stat-ada")).user
    return world


def test_sign_freeze_hash_and_versions(world) -> None:
    stat, trial = world.statistician, world.trial
    with pytest.raises(Invalid) as refused:
        plans.save_draft(trial, {**DATA, "primary_outcomes": ["speed"], "alpha": 0.7}, by=stat)
    assert len(refused.value.problems) == 2
    draft = plans.save_draft(trial, {**DATA, "primary_campaign": world.campaign}, by=stat)
    assert draft.version == 1 and draft.status == "draft"
    with pytest.raises(SignatureRefused):
        plans.freeze(draft, by=stat, password="wrong")
    assert AuditEvent.objects.filter(action="signature.refused").count() == 1
    frozen = plans.freeze(draft, by=stat, password=PASSWORD)
    canonical = json.dumps(frozen.content(), sort_keys=True, separators=(",", ":"))
    assert frozen.sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert Signature.objects.get(meaning="analysis_plan").object_id == str(frozen.pk)
    assert AuditEvent.objects.get(action="analysis_plan.frozen").after["sha256"] == frozen.sha256
    frozen.notes = "changed"
    with pytest.raises(ValueError, match="frozen"):
        frozen.save()
    # A change is a new version, with a reason.
    second = plans.start_new_version(trial, by=stat)
    assert second.version == 2 and second.primary_campaign_id == world.campaign.pk
    with pytest.raises(Invalid, match="cannot be signed"):
        plans.freeze(second, by=stat, password=PASSWORD)
    second = plans.save_draft(trial, {"alpha": 0.01, "reason": "DSMB asked for 99% CIs",
                                      "primary_method": "student",
                                      "missing_ratings": "available"}, by=stat)
    second = plans.freeze(second, by=stat, password=PASSWORD)
    assert plans.current_plan(trial).version == 2 and second.sha256 != frozen.sha256
    assert AnalysisPlan.objects.get(version=1).sha256 == frozen.sha256  # kept as it was


def test_a_plan_signed_after_unblinding_says_so(world) -> None:
    stat, trial = world.statistician, world.trial
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.LOCKED)
    draft = plans.save_draft(trial, {**DATA, "primary_campaign": world.campaign}, by=stat)
    assert plans.freeze(draft, by=stat, password=PASSWORD).after_unblinding


def test_plan_page_roles_and_signing(world, client) -> None:
    url = f"/analysis/{world.trial.slug}/plan/"
    reader = world.read.readers["scp"].user
    client.force_login(reader)
    assert client.get(url).status_code == 403
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    coordinator = MembershipFactory(trial=world.trial, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    assert client.get(url).status_code == 200
    assert client.post(url, {"action": "save"}).status_code == 403
    client.force_login(world.statistician)
    form = {**DATA, "primary_campaign": world.campaign.pk, "pooled_campaigns": []}
    assert client.post(url, {**form, "action": "save"}).status_code == 302
    wrong = client.post(url, {**form, "action": "sign", "password": "nope"})
    assert wrong.status_code == 400 and b"password is wrong" in wrong.content
    assert client.post(url, {**form, "action": "sign", "password": PASSWORD}).status_code == 302
    page = client.get(url).content.decode()
    plan = plans.current_plan(world.trial)
    assert plan.sha256 in page and "Statistical analysis plan approved" in page


def test_report_and_pdf_lead_with_the_plan(world, tmp_path) -> None:
    rate_everything(world)
    stat = world.statistician
    draft = plans.save_draft(world.trial, {**DATA, "primary_campaign": world.campaign},
                             by=stat)
    plan = plans.freeze(draft, by=stat, password=PASSWORD)
    files = build_report(world.trial, tmp_path / "r")
    summary = json.loads(files.summary.read_text())
    assert summary["plan"]["sha256"] == plan.sha256
    assert summary["outcomes"]["quality"]["basis"]["student"] == "pre-specified, primary"
    html = files.html.read_text()
    assert plan.sha256 in html and "pre-specified, primary" in html
    names = (world.trial.ai_assisted_label, world.trial.scp_label)
    # Read the PDF as a reader would: Table 1's headers and its CI and P cells on a page.
    pages = []
    count = int(next(line.split()[-1] for line in subprocess.run(
        ["pdfinfo", str(files.pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines() if line.startswith("Pages:")))
    for number in range(1, count + 1):
        pages.append(subprocess.run(
            ["pdftotext", "-layout", "-f", str(number), "-l", str(number), str(files.pdf), "-"],
            capture_output=True, text=True, check=True).stdout)
    text = " ".join(" ".join(page.split()) for page in pages)
    assert plan.sha256 in text.replace(" ", "")
    starts = [i for i, page in enumerate(pages) if "Table 1. Primary outcomes" in page]
    assert len(starts) == 1, "Table 1 starts on one page"
    # Its rows are on that page or, when the plan above pushes it down, the next (repeated
    # headers): each cell whole on one page either way.
    page = " ".join(" ".join(p.split()) for p in pages[starts[0]:starts[0] + 2])
    from analysis.report import build_context
    context = build_context(world.trial, figures=False)
    first = context["tables"][0]
    assert first.name == "table1"
    for header in first.columns:  # a header may wrap over lines: each of its words is there
        assert all(word in page.split() for word in header.split()), header
    for row in first.rows:
        if row[4]:  # its CI and P, whole (a CI never breaks inside)
            assert any(row[4] in " ".join(p.split()) and row[5] in " ".join(p.split())
                       for p in pages[starts[0]:starts[0] + 2]), row
    for name in names:
        assert name in page
    assert "ai_assisted" not in text
