"""Session expiry after idle time (default 30 minutes): pages go to the sign-in page and come
back, API and background calls get 401; a page's own heartbeats keep no session alive."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from tests.support.factories import UserFactory
from trial.middleware import IDLE_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(settings) -> Client:
    settings.SESSION_IDLE_MINUTES = 30
    client = Client()
    client.force_login(UserFactory(username="idle.reader"))
    client.get("/")  # the first request starts the clock
    return client


def age(client: Client, minutes: float) -> None:
    session = client.session
    session[IDLE_KEY] = time.time() - minutes * 60
    session.save()


def test_an_active_session_stays(client: Client) -> None:
    age(client, 29)
    assert client.get("/").status_code == 200
    assert time.time() - client.session[IDLE_KEY] < 5  # activity moved the clock


def test_an_idle_page_goes_to_sign_in_and_back(client: Client) -> None:
    age(client, 31)
    response = client.get("/read/cxr/3/?x=1")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fread%2Fcxr%2F3%2F%3Fx%3D1"
    assert "_auth_user_id" not in client.session


def test_an_idle_api_call_gets_401(client: Client) -> None:
    age(client, 31)
    response = client.get("/api/trials/")
    assert response.status_code == 401 and response.json()["signed_out"] is True
    assert "30 minutes" in response.json()["detail"]


def test_background_requests_keep_no_session_alive(client: Client) -> None:
    age(client, 20)
    before = client.session[IDLE_KEY]
    client.get("/api/trials/", HTTP_X_BACKGROUND="1")
    assert client.session[IDLE_KEY] == before
    age(client, 31)
    assert client.get("/api/trials/", HTTP_X_BACKGROUND="1").status_code == 401


def test_zero_turns_expiry_off(client: Client, settings) -> None:
    settings.SESSION_IDLE_MINUTES = 0
    age(client, 600)
    assert client.get("/").status_code == 200
