"""The case page's "AI draft" panel (registered on ``trial``'s ``CaseAdmin`` from
``DraftingConfig.ready``): the status of the case's draft and a link to it, never its text.

Read-only HTML from ``queries``; no admin module is imported here (``apps`` registers it).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from trial.models import Case

from . import queries
from .models import Draft, ModelEndpoint


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "–"


def draft_panel(case: Case) -> str:
    """The draft of the trial's active endpoint as configured now: status (queued, running,
    done, failed), attempts, times, the error of a failed one, and a link to its admin page."""
    endpoint = queries.active_endpoint(case.trial)
    draft = queries.current_draft(case) if endpoint is not None else None
    others = Draft.objects.filter(case=case).exclude(pk=getattr(draft, "pk", None)).count()
    earlier = ""
    if others:
        query = urlencode({"q": case.case_id, "case__trial__id__exact": case.trial_id})
        earlier = format_html(' <a href="{}?{}">{} draft(s) of other configurations</a>.',
                              reverse("admin:drafting_draft_changelist"), query, others)
    if endpoint is None:
        add = reverse("admin:drafting_modelendpoint_add") + f"?trial={case.trial_id}"
        return format_html('No active model endpoint: no draft can be made (<a href="{}">add '
                           "one</a>).{}", add, earlier)
    if draft is None:
        why = ("it is queued when the case is enrolled" if case.status != Case.Status.ENROLLED
               else "the sweep or “Queue missing drafts” on the trial page queues it")
        return format_html("No draft from the active endpoint yet: {}.{}", why, earlier)
    rows = [("status", format_html('<strong class="draft-status" data-status="{}">{}</strong>',
                                   draft.status, draft.get_status_display())),
            ("attempts", str(draft.attempts)),
            ("queued", _when(draft.queued_at)), ("finished", _when(draft.finished_at))]
    if draft.backend == ModelEndpoint.Backend.DEMO:
        rows.append(("backend", "DEMO backend (offline, not a model)"))
    if draft.error:
        rows.append(("error", format_html('<pre class="draft-error">{}</pre>', draft.error)))
    if draft.warning:
        rows.append(("warning", draft.warning))
    table = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    link = reverse("admin:drafting_draft_change", args=[draft.pk])
    return format_html('<table class="case-panel">{}</table><p><a href="{}">Open the draft</a> '
                       "(its text, reply and configuration).{}</p>", table, link, earlier)
