"""Signing in without the admin: readers are not staff, so they use /accounts/login/."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.support.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db



def test_the_home_page_sends_anonymous_people_to_the_plain_login_page(settings) -> None:
    settings.LOGIN_URL = "/accounts/login/"
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    page = Client().get("/accounts/login/")
    assert page.status_code == 200 and b'name="password"' in page.content


def test_a_non_staff_reader_signs_in_and_sees_their_trials() -> None:
    reader = MembershipFactory(user=UserFactory(username="reader-ben")).user
    assert not reader.is_staff
    client = Client(enforce_csrf_checks=False)
    response = client.post("/accounts/login/", {"username": "reader-ben", "password": PASSWORD,
                                                "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert reader.memberships.get().trial.name.encode() in home.content
    assert b"Trial administration" not in home.content


def test_a_wrong_password_is_refused() -> None:
    UserFactory(username="reader-eve")
    response = Client().post("/accounts/login/", {"username": "reader-eve", "password": "no"})
    assert response.status_code == 200 and b"did not match" in response.content


def test_signing_out_is_a_post() -> None:
    client = Client()
    client.force_login(UserFactory())
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302
