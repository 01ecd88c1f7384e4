"""The final reports for a site's reporting system over FHIR: its sender token reads its own
site's signed reports (one, or a searchset Bundle polled with ``issued=gt``), nobody else's;
the Bundle is validated with fhir.resources and paged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from pacs.models import SiteSender
from reader.models import Review
from tests.pacs.test_delivery import build, sign
from tests.support.factories import SiteFactory, UserFactory
from trial.models import Arm, Membership, Role

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def signed(tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    world, _ = build(tmp_path, monkeypatch)
    case = sign(world, django_capture_on_commit_callbacks)
    return world, case


def test_a_sites_system_reads_its_own_sites_reports_by_token(signed) -> None:
    world, case = signed
    system = token_client(SiteSender.objects.create(site=case.site, user=UserFactory()).user)
    one = system.get(f"/api/trials/{world.trial.slug}/cases/{case.pk}/diagnostic-report/")
    assert one.status_code == 200 and one.json()["subject"]["identifier"]["value"] == \
        case.case_id
    search = system.get(f"/api/trials/{world.trial.slug}/diagnostic-reports/")
    assert search.status_code == 200
    bundle = Bundle.model_validate(search.json())
    assert (bundle.type, bundle.total, len(bundle.entry)) == ("searchset", 1, 1)
    entry = bundle.entry[0]
    assert entry.resource.status == "final" and entry.search.mode == "match"
    assert entry.fullUrl.endswith(f"/cases/{case.pk}/diagnostic-report/")
    body = search.content.decode()
    assert not any(arm in body for arm in Arm.values)


def test_another_sites_system_and_other_accounts_see_nothing(signed) -> None:
    world, case = signed
    other_site = SiteFactory(trial=world.trial, code="Z9")
    elsewhere = token_client(SiteSender.objects.create(site=other_site, user=UserFactory()).user)
    url = f"/api/trials/{world.trial.slug}/cases/{case.pk}/diagnostic-report/"
    assert elsewhere.get(url).status_code == 404  # another site's case
    assert elsewhere.get(f"/api/trials/{world.trial.slug}/diagnostic-reports/").json()[
        "total"] == 0
    other_trial = SiteFactory(code="Q1")  # a sender of another trial
    outsider = token_client(SiteSender.objects.create(site=other_trial, user=UserFactory()).user)
    assert outsider.get(url).status_code == 404
    assert outsider.get(f"/api/trials/{world.trial.slug}/diagnostic-reports/").status_code == 404
    reader = APIClient()
    reader.force_authenticate(world.readers[Arm.AI_ASSISTED].user)
    assert reader.get(f"/api/trials/{world.trial.slug}/diagnostic-reports/").status_code == 403
    assert APIClient().get(url).status_code in (401, 403)


def test_polling_with_issued_and_paging(signed) -> None:
    world, case = signed
    coordinator = APIClient()
    coordinator.force_authenticate(
        Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user)
    signed_at = Review.objects.get(case=case).signed_at
    url = f"/api/trials/{world.trial.slug}/diagnostic-reports/"
    before = (signed_at - timedelta(seconds=1)).isoformat()
    assert coordinator.get(url, {"issued": f"gt{before}"}).json()["total"] == 1
    assert coordinator.get(url, {"issued": f"gt{signed_at.isoformat()}"}).json()["total"] == 0
    assert coordinator.get(url, {"issued": f"ge{signed_at.isoformat()}"}).json()["total"] == 1
    assert coordinator.get(url, {"issued": f"ge{signed_at.date().isoformat()}"}).json()[
        "total"] == 1
    page = coordinator.get(url, {"_count": 1, "_offset": 1}).json()
    assert page["total"] == 1 and "entry" not in page
    assert [link["relation"] for link in page["link"]] == ["self"]
    for bad in ({"issued": "2026-01-01"}, {"issued": "gtsoon"}, {"_count": 0},
                {"_count": 501}, {"_offset": -1}, {"_count": "many"}):
        assert coordinator.get(url, bad).status_code == 400, bad
