"""Records nobody edits: the audit log and the randomisation list (concealed until lock).

The audit log has no add, change or delete for anyone, superusers included. The randomisation
list shows how it was made and its commitment hash, and each extension's; the seeds, block
sizes and the slots' arms appear only once the trial is locked (when they can be checked
against the commitments).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from trial import audit, randomization
from trial.models import AuditEvent, RandomizationList, Trial

from .base import ReadOnlyAdmin, arm_html

RELATED_ONLY = admin.RelatedOnlyFieldListFilter


def pretty_json(value: object) -> str:
    if value in (None, {}, []):
        return "–"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "trial", "actor", "action", "object_type", "object_repr")
    list_filter = ("action", ("trial", RELATED_ONLY))
    search_fields = ("action", "object_type", "object_id", "object_repr", "actor__username")
    list_select_related = ("trial", "actor")
    date_hierarchy = "at"
    fields = ("at", "trial", "actor", "action", "object_type", "object_id", "object_repr",
              "before_shown", "after_shown")
    readonly_fields = fields

    @admin.display(description="before")
    def before_shown(self, obj: AuditEvent) -> str:
        return pretty_json(obj.before)

    @admin.display(description="after")
    def after_shown(self, obj: AuditEvent) -> str:
        return pretty_json(obj.after)


CONCEALED_UNTIL_LOCK = ("seed", "block_sizes", "commitments_checked", "slot_table")


@admin.register(RandomizationList)
class RandomizationListAdmin(ReadOnlyAdmin):
    list_display = ("trial", "method", "created_by", "created_at", "short_commitment",
                    "slot_counts")
    list_select_related = ("trial", "created_by")

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(
            n_slots=models.Count("slots"),
            n_taken=models.Count("slots", filter=models.Q(slots__membership__isnull=False)),
        )

    def get_fields(self, request: HttpRequest, obj: RandomizationList | None = None):
        shown = ["trial", "method", "source_name", "stratified", "created_by", "created_at",
                 "commitment", "slot_counts", "extension_table"]
        if obj is not None and obj.trial.status == Trial.Status.LOCKED:
            shown += CONCEALED_UNTIL_LOCK
        return shown

    def get_readonly_fields(self, request: HttpRequest, obj: RandomizationList | None = None):
        return self.get_fields(request, obj)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None):
        """Once the trial is locked the page reveals the seed and every slot: each view of
        it is an audit event (who, when)."""
        obj = self.get_object(request, object_id)
        if obj is not None and obj.trial.status == Trial.Status.LOCKED:
            audit.record(action="randomization.revealed", obj=obj, actor=request.user,
                         trial=obj.trial, after={"shown": ["seed", "slots"], "extensions": list(
                             obj.extensions.values_list("number", flat=True))})
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="commitment")
    def short_commitment(self, obj: RandomizationList) -> str:
        return format_html("<code>{}…</code>", obj.commitment[:16])

    @admin.display(description="slots (allocated / total)")
    def slot_counts(self, obj: RandomizationList) -> str:
        taken = getattr(obj, "n_taken", None)
        total = getattr(obj, "n_slots", None)
        if taken is None:
            taken = obj.slots.filter(membership__isnull=False).count()
            total = obj.slots.count()
        return f"{taken} / {total}"

    @admin.display(description="extensions (seeds revealed after lock)")
    def extension_table(self, obj: RandomizationList) -> str:
        """Blocks appended for a stratum: how, by whom, their commitment; the seed only once
        the trial is locked."""
        extensions = list(obj.extensions.select_related("created_by"))
        if not extensions:
            return "None: the list as it was made."
        locked = obj.trial.status == Trial.Status.LOCKED
        rows = format_html_join("", "<tr>" + "<td>{}</td>" * 8 + "</tr>", (
            (e.number, e.stratum or "–", e.get_method_display(),
             f"{e.blocks} / {e.slot_count}", f"{e.created_by} on {e.created_at:%Y-%m-%d %H:%M}",
             e.source_name or "–", format_html("<code>{}</code>", e.commitment),
             self._extension_seed(e) if locked else "concealed until the lock")
            for e in extensions
        ))
        return format_html(
            "<table><thead><tr><th>#</th><th>stratum</th><th>method</th><th>blocks / slots</th>"
            "<th>made</th><th>file</th><th>commitment</th><th>seed</th></tr></thead>"
            "<tbody>{}</tbody></table>", rows)

    @staticmethod
    def _extension_seed(extension) -> str:
        try:
            return str(randomization.reveal_extension_seed(extension))
        except randomization.RandomizationError as exc:
            return str(exc)

    @admin.display(description="commitments checked (after lock)")
    def commitments_checked(self, obj: RandomizationList) -> str:
        if obj.trial.status != Trial.Status.LOCKED:
            return "–"
        checks = [("the list", randomization.check_commitment(obj))]
        checks += [(f"extension {e.number}", randomization.check_extension_commitment(e))
                   for e in obj.extensions.all()]
        return "; ".join(f"{part}: {'matches' if ok else 'DOES NOT MATCH'}" for part, ok in checks)

    @admin.display(description="slots (revealed after lock)")
    def slot_table(self, obj: RandomizationList) -> str:
        if obj.trial.status != Trial.Status.LOCKED:  # belt and braces: never before lock
            return "–"
        rows = format_html_join("", "<tr>" + "<td>{}</td>" * 5 + "</tr>", (
            (s.stratum or "–", s.position, arm_html(obj.trial, s.arm),
             f"extension {s.extension.number}" if s.extension else "list",
             s.membership.user.get_username() if s.membership else "unused")
            for s in obj.slots.select_related("membership__user", "extension")
        ))
        return format_html("<table><thead><tr><th>stratum</th><th>position</th><th>arm</th>"
                           "<th>part</th><th>reader</th></tr></thead><tbody>{}</tbody></table>",
                           rows)

    def seed(self, obj: RandomizationList) -> str:
        try:
            return str(randomization.reveal_seed(obj.trial))
        except randomization.RandomizationError as exc:
            return str(exc)
