"""A notification e-mail's link, followed in a real Chromium by the person it was sent to,
opens their worklist (never a case)."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from notify.send import send_due
from tests.support.browser_world import expect, sign_in
from tests.support.read_world import build_read_world
from trial.models import Arm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_readers_email_link_opens_the_worklist(settings, live_server, tmp_path, page) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = live_server.url
    world = build_read_world(tmp_path, cases=1)
    reader = world.readers[Arm.SCP].user
    assert reader.email
    send_due()
    sent = [m for m in mail.outbox if reader.email in m.to]
    assert len(sent) == 1, [m.to for m in mail.outbox]
    links = re.findall(r"https?://\S+", sent[0].body)
    worklist = f"{live_server.url}/read/{world.trial.slug}/"
    assert worklist in links
    assert world.cases[0].case_id not in sent[0].body  # a link to the list, never a case
    sign_in(page, live_server, reader, worklist.removeprefix(live_server.url))
    expect(page.get_by_role("link", name=re.compile(world.cases[0].case_id))).to_be_visible()
    page.wait_for_load_state("networkidle")
