"""The reader and senior pages render what the API sends, and nothing more."""

from __future__ import annotations

import pytest
from django.test import Client

from drafting.models import Draft
from reader.models import Reading
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path)


def browser_of(membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


def test_worklist_page_shows_progress_and_the_next_case(world: ReadWorld) -> None:
    page = browser_of(world.readers[Arm.SCP]).get(f"/read/{world.trial.slug}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<progress id="progress" value="0" max="2"' in html
    assert f'href="/read/{world.trial.slug}/1/"' in html and 'id="next-case"' in html


def test_ai_case_page_opens_the_reading_with_the_marked_draft(world: ReadWorld) -> None:
    draft = Draft.objects.get(case=world.assignment(Arm.AI_ASSISTED).case)
    page = browser_of(world.readers[Arm.AI_ASSISTED]).get(f"/read/{world.trial.slug}/1/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="ai-banner"' in html
    assert draft.findings.split("\n")[0] in html
    assert Reading.objects.get(assignment=world.assignment(Arm.AI_ASSISTED)).status == "open"


def test_scp_case_page_has_no_draft_text_and_no_banner(world: ReadWorld) -> None:
    draft = Draft.objects.get(case=world.assignment(Arm.SCP).case)
    page = browser_of(world.readers[Arm.SCP]).get(f"/read/{world.trial.slug}/1/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="ai-banner"' not in html
    for line in (draft.findings + "\n" + draft.impression).splitlines():
        if line.strip():
            assert line.strip() not in html


def test_ai_case_without_draft_says_why(tmp_path) -> None:
    world = build_read_world(tmp_path, endpoint=False)
    page = browser_of(world.readers[Arm.AI_ASSISTED]).get(f"/read/{world.trial.slug}/1/")
    assert page.status_code == 409 and "not made yet" in page.content.decode()
    listing = browser_of(world.readers[Arm.AI_ASSISTED]).get(f"/read/{world.trial.slug}/")
    assert "Waiting: The AI draft is not made yet." in listing.content.decode()


def test_findings_checklist_appears_only_when_the_trial_asks(tmp_path) -> None:
    world = build_read_world(tmp_path, findings_checklist=True)
    html = browser_of(world.readers[Arm.SCP]).get(f"/read/{world.trial.slug}/1/").content
    assert b'value="Pleural Effusion"' in html and html.count(b'name="labels"') == 14
