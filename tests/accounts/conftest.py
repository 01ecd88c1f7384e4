"""Two trials and their people, for the invitation, password and People-page tests.

Trial A (site A1) and trial B (site B1) each have a staff coordinator and a reader; one reader
(``shared``) is in both. ``SITE_URL`` is an origin no request names, so a link built from the
request's host would show.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.support.factories import (
    PASSWORD,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from trial.models import Role, Site, Trial

from .support import SITE_URL


@dataclass
class People:
    a: Trial
    b: Trial
    site_a: Site
    site_b: Site
    coord_a: object
    coord_b: object
    reader_a: object
    reader_b: object
    shared: object
    root: object

    def client(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client


@pytest.fixture(autouse=True)
def _site_url(settings) -> None:
    settings.SITE_URL = SITE_URL


@pytest.fixture
def world(db) -> People:
    a = TrialFactory(name="Trial Alpha", slug="alpha")
    b = TrialFactory(name="Trial Bravo", slug="bravo")
    site_a = SiteFactory(trial=a, code="A1", name="Hospital A1")
    site_b = SiteFactory(trial=b, code="B1", name="Hospital B1")
    coord_a = UserFactory(username="coord.a", is_staff=True, first_name="Ada", last_name="Coord")
    coord_b = UserFactory(username="coord.b", is_staff=True)
    MembershipFactory(trial=a, user=coord_a, role=Role.COORDINATOR, site=site_a)
    MembershipFactory(trial=b, user=coord_b, role=Role.COORDINATOR, site=site_b)
    reader_a = MembershipFactory(trial=a, role=Role.READER, site=site_a,
                                 user__username="reader.a").user
    reader_b = MembershipFactory(trial=b, role=Role.READER, site=site_b,
                                 user__username="reader.bravo-only").user
    shared = UserFactory(username="shared.reader")
    MembershipFactory(trial=a, user=shared, role=Role.READER, site=site_a)
    MembershipFactory(trial=b, user=shared, role=Role.READER, site=site_b)
    root = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    mail.outbox.clear()
    return People(a=a, b=b, site_a=site_a, site_b=site_b, coord_a=coord_a, coord_b=coord_b,
                  reader_a=reader_a, reader_b=reader_b, shared=shared, root=root)
