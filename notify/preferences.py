"""Who wants e-mails, and how often a trial's work may be mailed: the person's opt-out and the
trial's settings (defaults when neither has a row)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .models import DEFAULT_INTERVAL_HOURS, NotificationPreference, NotificationSettings


@dataclass(frozen=True)
class TrialRule:
    enabled: bool = True
    interval_hours: int = DEFAULT_INTERVAL_HOURS


def trial_rules(trial_ids: Iterable[int]) -> dict[int, TrialRule]:
    """Each trial's notification rule: its settings row, or on and daily."""
    ids = list(trial_ids)
    stored = {s.trial_id: TrialRule(s.enabled, s.interval_hours)
              for s in NotificationSettings.objects.filter(trial_id__in=ids)}
    return {pk: stored.get(pk, TrialRule()) for pk in ids}


def email_enabled(user: Any) -> bool:
    """Does ``user`` want notification e-mails? (Yes unless they turned them off.)"""
    stored = NotificationPreference.objects.filter(user=user).first()
    return stored.email_enabled if stored is not None else True


def set_email_enabled(user: Any, enabled: bool) -> NotificationPreference:
    """Turn ``user``'s notification e-mails on or off (for all their trials)."""
    pref, _ = NotificationPreference.objects.update_or_create(
        user=user, defaults={"email_enabled": enabled})
    return pref


def opted_out_user_ids() -> set[int]:
    return set(NotificationPreference.objects.filter(email_enabled=False)
               .values_list("user_id", flat=True))
