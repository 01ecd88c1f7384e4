"""Who may open the dashboard, its JSON and "Retry failed drafts"; what they get.

The world is ``tests.support.access_world`` (trial A with four cases in every state, every
role, trial B's coordinator as the outsider, a superuser), built once for the module; each
test runs in a savepoint rolled back after it. Conventions as elsewhere: a page sends an
anonymous visitor to the login page (302), the JSON answers 401; someone with no role in the
trial gets 404; another role 403. A refusal writes nothing.
"""

from __future__ import annotations

import json
import time

import pytest
from django.db import transaction
from django.test import override_settings

from drafting.models import Draft
from monitor.dashboard import dashboard_data
from tests.support.access_world import (
    ARM_LABELS,
    DRAFT_MARK,
    MARK,
    SLUG,
    AccessWorld,
    build_access_world,
    snapshot,
)
from trial.middleware import IDLE_KEY
from trial.models import AuditEvent, Trial

pytestmark = pytest.mark.django_db

PAGE, DATA, RETRY = f"/monitor/{SLUG}/", f"/monitor/{SLUG}/data.json", \
    f"/monitor/{SLUG}/retry-drafts/"
LOGIN = "/accounts/login/?next="

# role -> (page, JSON, retry page, retry POST)
TABLE = {
    "coordinator": (200, 200, 200, 302),
    "statistician": (200, 200, 403, 403),
    "superuser": (200, 200, 200, 302),
    "ai_reader": (403, 403, 403, 403),
    "scp_reader": (403, 403, 403, 403),
    "senior": (403, 403, 403, 403),
    "rater": (403, 403, 403, 403),
    "other_coordinator": (404, 404, 404, 404),
    "anonymous": (302, 401, 302, 302),
}


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("monitor-access-media")
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media,
                                                        PASSWORD_HASHERS=fast):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_access_world(tmp_path_factory.mktemp("monitor-access-dicom")), media
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def world(shared, db, settings) -> AccessWorld:
    world, media = shared
    settings.MEDIA_ROOT = media  # the images were imported there
    return world


def fail_a_draft(world: AccessWorld) -> Draft:
    draft = Draft.objects.get(case=world.cases["D"])
    Draft.objects.filter(pk=draft.pk).update(
        status=Draft.Status.FAILED, error=f"HTTP 500 from the model server: {DRAFT_MARK}")
    return draft


@pytest.mark.parametrize("role", list(TABLE))
def test_access_table(world, role) -> None:
    fail_a_draft(world)
    before = snapshot()
    client = world.client(role)
    page, data, retry, post = TABLE[role]
    got = (client.get(PAGE), client.get(DATA), client.get(RETRY),
           client.post(RETRY, {"confirm": "yes"}))
    assert [r.status_code for r in got] == [page, data, retry, post]
    if role == "anonymous":
        assert got[0]["Location"] == LOGIN + PAGE
        assert got[1].json()["signed_out"] is True
    if post != 302 or role == "anonymous":
        assert snapshot() == before  # refused: nothing written, not even an audit event
        assert Draft.objects.get(case=world.cases["D"]).status == Draft.Status.FAILED


@pytest.mark.parametrize("role", ["coordinator", "statistician", "superuser"])
def test_viewing_shows_no_report_text_and_is_not_audited(world, role) -> None:
    fail_a_draft(world)
    events = AuditEvent.objects.count()
    client = world.client(role)
    page = client.get(PAGE).content.decode()
    data = client.get(DATA).content.decode()
    for text in (page, data):
        for mark in (*MARK.values(), DRAFT_MARK):
            assert mark not in text
    assert ARM_LABELS[0] in page  # arms are the coordinator's to see (allocation data)
    assert AuditEvent.objects.count() == events
    # The retry button is the coordinators' (and superusers') only.
    assert ('id="retry-drafts"' in page) == (role != "statistician")


def test_the_json_is_the_pages_numbers(world) -> None:
    response = world.client("statistician").get(DATA, HTTP_X_BACKGROUND="1")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    data = response.json()
    trial = Trial.objects.get(slug=SLUG)
    want = json.loads(json.dumps(dashboard_data(trial, links=False)))
    for volatile in ("generated_at", "generated_label"):
        data.pop(volatile), want.pop(volatile)
    assert data == want
    assert set(data) >= {"numbers", "tables", "figures", "actions", "limits"}
    assert data["numbers"]["readings.submitted"] == 5  # A, B by both readers, C by the AI one
    assert data["numbers"]["reviews.in_review"] == 1 and data["numbers"]["reviews.ready"] == 1
    assert all(action["url"] is None for action in data["actions"])  # no admin for them


def test_the_page_carries_its_poll_settings_in_a_data_block(world, settings) -> None:
    settings.MONITOR_POLL_SECONDS = 2
    html = world.client("coordinator").get(PAGE).content.decode()
    assert ('<script id="monitor-config" type="application/json">'
            f'{{"url": "{DATA}", "interval": 2.0}}</script>') in html
    assert '<script src="/static/monitor/dashboard.js" defer></script>' in html
    assert "<script>" not in html  # nothing inline (the CSP would refuse it)


def test_polls_do_not_keep_an_idle_session_alive(world) -> None:
    client = world.client("coordinator")
    client.get(PAGE)
    session = client.session
    session[IDLE_KEY] = stale = time.time() - 600
    session.save()
    client.get(DATA, HTTP_X_BACKGROUND="1")
    assert client.session[IDLE_KEY] == stale
    client.get(DATA)  # the same request made by a person counts
    assert client.session[IDLE_KEY] > stale


def test_retry_asks_first_then_requeues_through_the_drafting_service(world) -> None:
    draft = fail_a_draft(world)
    client = world.client("coordinator")
    confirm = client.get(RETRY).content.decode()
    assert "1 failed draft of the active endpoint" in confirm
    assert "HTTP 500 from the model server" in confirm and DRAFT_MARK not in confirm
    assert client.post(RETRY).status_code == 200  # not confirmed: asked again
    assert Draft.objects.get(pk=draft.pk).status == Draft.Status.FAILED

    response = client.post(RETRY, {"confirm": "yes"}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert "1 failed draft re-queued." in response.content.decode()
    assert Draft.objects.get(pk=draft.pk).status == Draft.Status.DONE  # in-process: made again
    event = AuditEvent.objects.get(action="draft.retried", object_id=str(draft.pk))
    assert event.actor == world.users["coordinator"]
    assert event.before["status"] == Draft.Status.FAILED


def test_retry_is_refused_once_the_trial_is_locked(world) -> None:
    fail_a_draft(world)
    Trial.objects.filter(slug=SLUG).update(status=Trial.Status.LOCKED)
    before = snapshot()
    response = world.client("coordinator").post(RETRY, {"confirm": "yes"})
    assert response.status_code == 409
    assert "locked" in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize(("role", "linked"), [
    ("coordinator", True), ("statistician", True), ("ai_reader", False), ("senior", False),
    ("rater", False)])
def test_the_home_page_links_the_dashboard(world, role, linked) -> None:
    html = world.client(role).get("/").content.decode()
    assert (f'<a href="{PAGE}" class="dashboard-link">Dashboard</a>' in html) == linked
