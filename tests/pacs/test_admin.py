"""The sites' DICOM connections in the admin: set up by the trial's coordinators only, a
sender's token shown once, pulls and deliveries read-only."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.authtoken.models import Token

from pacs.models import CallingAE, PullItem, PullRun, RemoteNode, SiteSender
from tests.support.factories import SiteFactory
from tests.support.trial_world import World, build_world
from trial.models import AuditEvent


@pytest.fixture
def world(db) -> World:
    return build_world()


def test_a_coordinator_adds_a_calling_ae_title_for_their_site_audited(world) -> None:
    client = world.client("coordinator")
    response = client.post(reverse("admin:pacs_callingae_add"),
                           {"site": world.site.pk, "ae_title": "  HOSPPACS "})
    assert response.status_code == 302
    assert CallingAE.objects.get().ae_title == "HOSPPACS"  # padding is not significant
    event = AuditEvent.objects.get(object_type="pacs.CallingAE")
    assert event.trial == world.trial  # in the trial's own audit log


def test_another_trials_site_is_not_offered_and_its_rows_are_hidden(world) -> None:
    other_site = SiteFactory(trial=world.other, code="B9")
    CallingAE.objects.create(site=other_site, ae_title="OTHERPACS")
    client = world.client("coordinator")
    response = client.post(reverse("admin:pacs_callingae_add"),
                           {"site": other_site.pk, "ae_title": "SNEAKY"})
    assert response.status_code == 200  # the form refuses the choice
    assert not CallingAE.objects.filter(ae_title="SNEAKY").exists()
    listing = client.get(reverse("admin:pacs_callingae_changelist")).content.decode()
    assert "OTHERPACS" not in listing


def test_readers_do_not_reach_the_pacs_admin(world) -> None:
    client = world.client("reader")
    assert client.get(reverse("admin:pacs_remotenode_changelist")).status_code in (302, 403)


def test_a_remote_node_needs_its_address(world) -> None:
    client = world.client("coordinator")
    response = client.post(reverse("admin:pacs_remotenode_add"), {
        "site": world.site.pk, "name": "PACS", "protocol": "dimse", "timeout_s": 30})
    assert response.status_code == 200 and not RemoteNode.objects.exists()
    assert "A DIMSE node needs its AE title, host and port." in response.content.decode()
    response = client.post(reverse("admin:pacs_remotenode_add"), {
        "site": world.site.pk, "name": "PACS", "protocol": "dicomweb", "timeout_s": 30,
        "base_url": "pacs.example.org/dicom-web", "retrieve": "on"})
    assert response.status_code == 302
    assert RemoteNode.objects.get().base_url == "http://pacs.example.org/dicom-web"


def test_a_sender_is_made_with_a_token_shown_once_and_rotated(world) -> None:
    client = world.client("coordinator")
    response = client.post(reverse("admin:pacs_sitesender_add"),
                           {"site": world.site.pk, "username": "hospital-a1-router"})
    assert response.status_code == 302
    sender = SiteSender.objects.select_related("user").get()
    assert not sender.user.has_usable_password()
    key = Token.objects.get(user=sender.user).key
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(key in m and "shown once" in m for m in shown)
    client.get(reverse("admin:pacs_sitesender_changelist"))  # the message, shown
    page = client.get(reverse("admin:pacs_sitesender_change", args=[sender.pk]))
    assert key not in page.content.decode()
    rotated = client.post(reverse("admin:pacs_sitesender_changelist"), {
        "action": "rotate_tokens", "_selected_action": [sender.pk]}, follow=True)
    new_key = Token.objects.get(user=sender.user).key
    assert new_key != key
    assert any(new_key in str(m) for m in get_messages(rotated.wsgi_request)) or (
        new_key in rotated.content.decode())
    assert AuditEvent.objects.filter(action="dicom_sender.token_rotated").exists()


def test_pull_runs_are_read_only(world) -> None:
    node = RemoteNode.objects.create(site=world.site, name="PACS", protocol="dicomweb",
                                     base_url="http://pacs.example.org/dicom-web")
    run = PullRun.objects.create(site=world.site, node=node, request="3 accession numbers")
    PullItem.objects.create(run=run, line=7, accession_key="k" * 64, status="not_found",
                            reason="no study with this accession number")
    client = world.client("coordinator")
    page = client.get(reverse("admin:pacs_pullrun_change", args=[run.pk]))
    assert page.status_code == 200 and "3 accession numbers" in page.content.decode()
    assert "no study with this accession number" in page.content.decode()  # its lines
    assert client.get(reverse("admin:pacs_pullrun_add")).status_code == 403


def test_the_pull_page_reports_each_line_and_stores_no_accession(world, monkeypatch) -> None:
    from pacs import pull
    from pacs.models import PullItem
    from tests.support.draft_world import dead_url

    monkeypatch.setattr(pull, "_pause", lambda seconds: None)
    node = RemoteNode.objects.create(site=world.site, name="PACS", protocol="dicomweb",
                                     base_url=dead_url())
    client = world.client("coordinator")
    url = reverse("admin:pacs_remotenode_pull", args=[node.pk])
    assert "Pull the studies" in client.get(url).content.decode()
    page = client.post(url, {"accessions": "ACC-777001\n\nACC-777002\n"}).content.decode()
    run = PullRun.objects.get()
    assert run.request == "2 accession number(s) from the admin's form"
    assert "ACC-777001" in page and "ACC-777002" in page  # shown once, to whoever typed them
    assert page.count("failed") >= 2
    stored = [str(v) for v in PullItem.objects.values_list("accession_key", "reason")]
    assert not any("777" in value for value in stored + [run.request])
    other = world.client("other_coordinator")
    assert other.get(url).status_code == 403
