"""Reading drafts: the endpoint in force, each case's current draft, what is still missing.

Read-only; the reader's workspace, the admin, the API and the commands ask these questions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from django.db import models
from django.db.models import QuerySet

from trial.models import Case, Trial

from .models import PROMPT_FIELDS, Draft, ModelEndpoint, fill_template

DEMO_NOTE = ("demo: an offline stand-in, NOT a model. Its drafts follow the demo case's "
             "synthetic truth (canned text for any other image), and are labelled demo wherever "
             "they are shown or exported.")


def active_endpoint(trial: Trial) -> ModelEndpoint | None:
    return ModelEndpoint.objects.filter(trial=trial, active=True).first()


def current_draft(case: Case) -> Draft | None:
    """The draft of ``case`` by its trial's endpoint as configured now (None if none)."""
    return current_drafts(case.trial, [case.pk]).get(case.pk)


def current_drafts(trial: Trial, case_ids: Iterable[int]) -> dict[int, Draft]:
    """Case id -> its current draft, for many cases in two queries (a worklist's length);
    none for no cases."""
    case_ids = list(case_ids)
    if not case_ids:
        return {}
    endpoint = active_endpoint(trial)
    if endpoint is None:
        return {}
    drafts = Draft.objects.filter(case_id__in=case_ids, fingerprint=endpoint.fingerprint)
    return {draft.case_id: draft for draft in drafts}


def pending_drafts(trial: Trial) -> tuple[ModelEndpoint | None, QuerySet[Case]]:
    """The active endpoint and the enrolled cases of ``trial`` that have no draft from it yet."""
    endpoint = active_endpoint(trial)
    if endpoint is None:
        return None, Case.objects.none()
    cases = Case.objects.filter(trial=trial, status=Case.Status.ENROLLED).exclude(
        drafts__fingerprint=endpoint.fingerprint
    )
    return endpoint, cases


def status_counts(trial: Trial, endpoint: ModelEndpoint) -> tuple[dict[str, int], int]:
    """Drafts of ``endpoint``'s current configuration per status, and the enrolled cases."""
    enrolled = Case.objects.filter(trial=trial, status=Case.Status.ENROLLED)
    counts = dict(
        Draft.objects.filter(case__in=enrolled, fingerprint=endpoint.fingerprint)
        .order_by().values_list("status").annotate(n=models.Count("pk"))
    )
    return counts, enrolled.count()


def build_prompt(endpoint: ModelEndpoint, case: Case) -> str:
    """The endpoint's template filled with the case's clinical history.

    Raises ``PromptTemplateError`` for a template with anything but the documented
    placeholders (one saved before they were checked): never ``str.format`` on it.
    """
    values = {field: str(getattr(case, field) or "").strip() or "not recorded"
              for field in PROMPT_FIELDS}
    values["sex"] = case.get_sex_display() if case.sex else "not recorded"
    return fill_template(endpoint.prompt_template, values)


def describe_endpoint(endpoint: ModelEndpoint) -> list[str]:
    """What a coordinator needs to recognise the endpoint: never the API key itself."""
    lines = [f"Endpoint: {endpoint.name} (trial {endpoint.trial.slug}"
             f"{', active' if endpoint.active else ', not active'})"]
    if endpoint.backend == ModelEndpoint.Backend.DEMO:
        lines.append(f"  backend:     {DEMO_NOTE}")
    else:
        if not endpoint.api_key_env:
            key = "none sent"
        elif os.environ.get(endpoint.api_key_env):
            key = f"from ${endpoint.api_key_env} (set here)"
        else:
            key = f"from ${endpoint.api_key_env} (NOT set in this environment)"
        lines += [
            f"  backend:     {endpoint.backend} ({endpoint.get_backend_display()})",
            f"  URL:         {endpoint.base_url}",
            f"  model:       {endpoint.model_name}",
            f"  API key:     {key}",
            f"  timeout:     {endpoint.timeout_s:g} s, concurrency {endpoint.concurrency}, "
            f"max attempts {endpoint.max_attempts}",
        ]
    lines.append(f"  fingerprint: {endpoint.fingerprint}")
    return lines
