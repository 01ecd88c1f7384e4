"""A set-up record may name only variables meant to hold its key: a coordinator can never have
the platform's own secrets sent to a server of their choice."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from drafting import run
from drafting.models import Draft
from tests.support.draft_world import draft_world
from trial import secrets


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "PACS_UID_KEY", "HOME",
                                  "EMAIL_HOST_PASSWORD", "AWS_SECRET_ACCESS_KEY"])
def test_other_variables_are_refused(name) -> None:
    assert not secrets.allowed(name)
    with pytest.raises(ValidationError, match="cannot hold a key here"):
        secrets.check_env_name(name)


@pytest.mark.parametrize("name", ["CXR_MODEL_KEY", "CXR_PACS_AUTH", "MODEL_API_KEY"])
def test_prefixed_and_listed_variables_are_allowed(name) -> None:
    assert secrets.allowed(name)
    secrets.check_env_name(name)


def test_the_list_is_a_setting(settings) -> None:
    settings.SECRET_ENV_NAMES = ["HOSPITAL_LLM_TOKEN"]
    assert secrets.allowed("HOSPITAL_LLM_TOKEN") and not secrets.allowed("MODEL_API_KEY")


def test_a_stored_endpoint_naming_secret_key_sends_nothing(db, tmp_path, fake_model,
                                                            monkeypatch) -> None:
    """Even a record saved past validation (an old row, a raw update) never sends it."""
    world = draft_world(tmp_path / "src", fake_model.url)
    type(world.endpoint).objects.filter(pk=world.endpoint.pk).update(api_key_env="SECRET_KEY")
    monkeypatch.setenv("SECRET_KEY", "the-platform-secret")
    run.run_draft(world.case.pk)
    draft = Draft.objects.get(case=world.case)
    assert draft.status == Draft.Status.FAILED and "may not hold a key" in draft.error
    assert fake_model.requests == []
