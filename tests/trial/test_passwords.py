"""Hole 7 of the security audit: weak passwords (``cxr-demo``, ``98127634``) were accepted.
Django's full set of validators, at least 12 characters, applies to every password a person
sets (admin user forms, password change); the demo's accounts are made without them."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tests.support.factories import UserFactory


@pytest.mark.parametrize("password", ["cxr-demo", "98127634", "password1234", "123456789012",
                                      "short"])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(ValidationError):
        validate_password(password)


@pytest.mark.django_db
def test_a_password_like_the_username_is_refused() -> None:
    user = UserFactory(username="radiologist.jones", email="jones@example.org")
    with pytest.raises(ValidationError, match="too similar"):
        validate_password("radiologist.jones1", user)


def test_a_long_unusual_passphrase_passes() -> None:
    validate_password("ochre-kestrel-tides-41")
