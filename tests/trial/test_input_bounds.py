"""Hole 17 of the security audit: the API took a case age of 512 (and 83,970,848,175,541),
``allowed_modalities`` as any JSON (the string "DX" read as the letters D and X), a 5 MB
history copied into the audit log on every edit, and case ids and names with control
characters, newlines and bidirectional marks. Every field now has the bounds its meaning
implies, in the model (the admin, the API and the commands share them)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.support.trial_world import World
from trial.models import AuditEvent, Case, Trial

A = "/api/trials/trial-a"
B = "/api/trials/trial-b"


def api(world: World, role: str = "coordinator") -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


@pytest.mark.parametrize(("field", "value"), [
    ("age", 512), ("age", 83_970_848_175_541), ("age", -1),
    ("history", "x" * 5_000_000), ("chief_complaint", "x" * 10_001),
    ("case_id", "A-0001\nA-0002"), ("case_id", "A\u202e1000"), ("case_id", "A\x00B"),
    ("history", "Cough\u200b for 5 days"),
])
def test_out_of_bounds_case_fields_are_refused(world: World, field: str, value) -> None:
    events = AuditEvent.objects.count()
    response = api(world).patch(f"{A}/cases/{world.case.pk}/", {field: value}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content[:300]
    assert AuditEvent.objects.count() == events  # nothing copied into the audit log


def test_within_bounds_values_are_kept(world: World) -> None:
    response = api(world).patch(f"{A}/cases/{world.case.pk}/", {
        "age": 90, "history": "Line one.\nLine two,\twith a tab.", "case_id": "A-0001b"},
        format="json")
    assert response.status_code == 200, response.content
    assert Case.objects.get(pk=world.case.pk).age == 90


@pytest.mark.parametrize("value", ["DX", ["dx"], ["D", "X"], [], [1], {"DX": True},
                                   ["CR", "CR"]])
def test_allowed_modalities_are_a_list_of_modality_codes(world: World, value) -> None:
    client = api(world, "other_coordinator")
    response = client.patch(f"{B}/", {"allowed_modalities": value}, format="json")
    assert response.status_code == 400 and "allowed_modalities" in response.json()
    good = client.patch(f"{B}/", {"allowed_modalities": ["CR", "DX", "MR"]}, format="json")
    assert good.status_code == 200
    assert Trial.objects.get(slug="trial-b").allowed_modalities == ["CR", "DX", "MR"]


@pytest.mark.parametrize(("url", "data"), [
    ("/sites/", {"code": "A7", "name": "Clinic\nB"}),
    ("/sites/", {"code": "A7", "name": "Clinic \u202eB"}),
    ("/criteria/", {"kind": "inclusion", "code": "c9", "text": "Adult\x07"}),
])
def test_names_have_no_hidden_characters(world: World, url: str, data: dict) -> None:
    client = api(world, "other_coordinator")
    response = client.post(f"{B}{url}", data, format="json")
    assert response.status_code == 400, response.content[:300]


def test_the_admin_refuses_the_same(world: World) -> None:
    client = world.client("coordinator")
    url = reverse("admin:trial_case_change", args=[world.case.pk])
    response = client.post(url, {"case_id": "A-0001", "site": world.site.pk, "age": 512,
                                 "sex": "U", "status": world.case.status})
    assert response.status_code == 200  # the form again, with the error
    assert "Ensure this value is less than or equal to 90" in response.content.decode()
    assert Case.objects.get(pk=world.case.pk).age != 512
