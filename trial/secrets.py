"""Secrets a set-up record may name, read from the environment: only those meant for it.

A model endpoint, a labeller, a judge and a PACS node each name the environment variable that
holds their key or Authorization header, and the platform sends its value to the server the
record names. So a coordinator who could name any variable could have ``SECRET_KEY``,
``DATABASE_URL`` or ``PACS_UID_KEY`` sent to a server of their choice. A record may therefore
name only a variable that starts with ``CXR_`` or is listed in ``SECRET_ENV_NAMES`` (default
``MODEL_API_KEY``), and never one of the platform's own settings.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ValidationError

PREFIX = "CXR_"
# The platform's own secrets and connections: never sent anywhere, whatever the lists say.
NEVER = frozenset({
    "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PACS_UID_KEY", "EMAIL_HOST_PASSWORD",
    "EMAIL_HOST_USER", "POSTGRES_PASSWORD", "DJANGO_SETTINGS_MODULE", "METRICS_TOKEN",
})


def listed() -> set[str]:
    names = getattr(settings, "SECRET_ENV_NAMES", "MODEL_API_KEY")
    if isinstance(names, str):
        names = names.split(",")
    return {name.strip() for name in names if name.strip()}


def allowed(name: str) -> bool:
    return bool(name) and name not in NEVER and (name.startswith(PREFIX) or name in listed())


def check_env_name(name: str) -> None:
    """Validator of the fields that name a secret's variable."""
    if name and not allowed(name):
        raise ValidationError(
            f"{name} cannot hold a key here: name a variable that starts with {PREFIX} (e.g. "
            f"{PREFIX}MODEL_KEY) or one listed in SECRET_ENV_NAMES; the platform's own settings "
            "are never sent.")


def read(name: str) -> str | None:
    """The variable's value, or None when it is not set or may not be used (never sent)."""
    if not allowed(name):
        return None
    return os.environ.get(name) or None
