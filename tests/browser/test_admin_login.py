"""Signing in to the admin in a real Chromium: staff coordinators get in, readers do not."""

from __future__ import annotations

import re

import pytest

from tests.support import factories
from trial.models import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STAFF_ONLY = "Please enter the correct username and password for a staff account."


def _sign_in(page, live_server, *, username: str, password: str) -> None:
    """Open /admin/ (which redirects to the login form), type the credentials, press Enter."""
    page.goto(f"{live_server.url}/admin/")
    assert re.search(r"/admin/login/\?next=/admin/$", page.url), page.url
    page.locator("#id_username").press_sequentially(username)
    page.locator("#id_password").press_sequentially(password)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")


def test_coordinator_signs_in_to_the_admin(page, live_server, tmp_path) -> None:
    user = factories.UserFactory(username="coord-anna", is_staff=True)
    factories.MembershipFactory(user=user, role=Role.COORDINATOR)

    _sign_in(page, live_server, username="coord-anna", password=factories.PASSWORD)

    assert page.url == f"{live_server.url}/admin/"
    assert "dashboard" in (page.locator("body").get_attribute("class") or "")
    assert page.locator("#user-tools strong").text_content() == "coord-anna"
    assert page.locator(".errornote").count() == 0

    shot = tmp_path / "admin-index.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert len(data) > 0
    assert data.startswith(PNG_SIGNATURE)


def test_reader_is_refused_by_the_admin(page, live_server) -> None:
    factories.MembershipFactory(user=factories.UserFactory(username="reader-ben"))

    _sign_in(page, live_server, username="reader-ben", password=factories.PASSWORD)

    assert "/admin/login/" in page.url
    assert STAFF_ONLY in page.locator(".errornote").inner_text()
    assert page.locator("#user-tools").count() == 0

    page.goto(f"{live_server.url}/admin/")  # still not signed in to the admin
    assert "/admin/login/" in page.url
