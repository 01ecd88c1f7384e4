"""Addresses of servers the platform calls (model servers, a PACS's DICOMweb): the short host
names of Docker and of a hospital's network are addresses too (Django's URLValidator refused
``http://model:8000/v1``, the compose stack's own model service)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from drafting.admin import ModelEndpointForm
from trial.validators import server_url

GOOD = ["http://model:8000/v1", "http://gpu-host:8000/v1", "http://10.0.0.5:8000/v1",
        "http://[::1]:8000/v1", "https://api.openai.com/v1", "http://localhost:11434/v1",
        "http://pacs-h1.hospital.local:8042/dicom-web", "http://pacs/dicom-web"]
BAD = ["ftp://model/v1", "model:8000/v1", "http://user:secret@model:8000/v1",
       "http://model:99999/v1", "http://mo del/v1", "http://model/v1?key=1", "http://-bad-/v1",
       "http://", "http://model:port/v1", "javascript:alert(1)", "http://model\u202e/v1"]


@pytest.mark.parametrize("url", GOOD)
def test_a_server_address_is_accepted(url: str) -> None:
    server_url(url)


@pytest.mark.parametrize("url", BAD)
def test_a_wrong_address_is_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        server_url(url)
    assert refused.value.messages[0]


@pytest.mark.django_db
def test_the_endpoint_form_takes_a_short_host_and_assumes_http() -> None:
    from tests.support.factories import TrialFactory

    trial = TrialFactory()
    data = {"trial": trial.pk, "name": "vllm", "active": "on", "backend": "openai",
            "model_name": "m", "timeout_s": 60, "prompt_template": "Report this image.",
            "max_tokens": 512, "temperature": 0, "image_size": 384, "pad_value": 127,
            "max_attempts": 5, "retry_backoff_s": 2, "concurrency": 4}
    form = ModelEndpointForm(data={**data, "base_url": "model:8000/v1"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["base_url"] == "http://model:8000/v1"
    refused = ModelEndpointForm(data={**data, "base_url": "http://user:pw@model:8000/v1"})
    assert not refused.is_valid() and "No user or password" in str(refused.errors)


@pytest.mark.django_db
def test_the_api_takes_a_short_host(client) -> None:
    from rest_framework.test import APIClient

    from tests.support.factories import MembershipFactory, TrialFactory
    from trial.models import Role

    trial = TrialFactory()
    coordinator = MembershipFactory(trial=trial, role=Role.COORDINATOR).user
    api = APIClient()
    api.force_authenticate(coordinator)
    url = f"/api/trials/{trial.slug}/model-endpoints/"
    made = api.post(url, {"name": "compose", "base_url": "http://model:8000/v1",
                          "model_name": "m"}, format="json")
    assert made.status_code == 201, made.content
    wrong = api.post(url, {"name": "bad", "base_url": "ftp://model/v1", "model_name": "m",
                           "active": False}, format="json")
    assert wrong.status_code == 400 and "http://" in str(wrong.json())
