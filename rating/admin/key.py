"""The unblinded key of rating campaigns for coordinators: which report is behind each rater's
code and side, with the values and times (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from trial import audit
from trial.admin.base import ReadOnlyAdmin
from trial.models import Trial

from .. import instruments as inst
from ..models import Campaign, RaterItem

RELATED_ONLY = admin.RelatedOnlyFieldListFilter


KEY_FIELDS = ("code", "campaign", "rater", "position", "case", "sources", "swapped",
              "values", "seconds_shown", "submitted_at", "revisions")


def _answer_text(instrument: str, answer: object) -> str:
    """An answer as a coordinator reads it: "Likert 4", "Errors: omitted finding 1
    significant, 2 minor" (never a Python dict)."""
    name = inst.instrument(instrument).name if instrument in inst.ALL else instrument
    if isinstance(answer, dict):  # error counts: type -> significance -> count
        parts = []
        for error_type, counts in answer.items():
            sig, minor = counts.get("significant", 0), counts.get("insignificant", 0)
            if sig or minor:
                parts.append(f"{error_type.replace('_', ' ')} {sig} significant, {minor} minor")
        return f"{name}: " + (", ".join(parts) or "none")
    return f"{name} {answer}"


@admin.register(RaterItem)
class UnblindedKeyAdmin(ReadOnlyAdmin):
    """The unblinded key for coordinators: which report is behind each rater's code and side.

    Statisticians get the same rows from ``GET /api/trials/{slug}/campaigns/{id}/key/``.
    """

    trial_path = "campaign__trial"
    list_display = KEY_FIELDS
    list_filter = (("campaign__trial", RELATED_ONLY), ("campaign", RELATED_ONLY), "swapped",
                   "item__kind")
    search_fields = ("code", "rater__user__username", "item__case__case_id")
    list_select_related = ("campaign", "rater__user", "item__case", "item__report",
                           "item__other", "rating")
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        """Only campaigns of locked trials: the key is revealed at the final lock."""
        return super().get_queryset(request).filter(campaign__trial__status=Trial.Status.LOCKED)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        """Each look at the key is an audit event, one per campaign shown."""
        campaigns = Campaign.objects.filter(
            pk__in=self.get_queryset(request).values("campaign")).select_related("trial")
        for campaign in campaigns:
            audit.record(action="campaign.key_viewed", obj=campaign, actor=request.user,
                         trial=campaign.trial)
        return super().changelist_view(request, {
            **(extra_context or {}), "title": "Unblinded key of rating campaigns (locked "
                                              "trials only)"})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None):
        item = self.get_object(request, object_id)
        if item is not None:
            audit.record(action="campaign.key_viewed", obj=item.campaign, actor=request.user,
                         trial=item.campaign.trial, after={"code": item.code})
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="rater", ordering="rater__user__username")
    def rater(self, obj: RaterItem) -> str:
        return obj.rater.user.get_username()

    @admin.display(description="case", ordering="item__case__case_id")
    def case(self, obj: RaterItem) -> str:
        return obj.item.case.case_id

    @admin.display(description="report (A) / other (B)")
    def sources(self, obj: RaterItem) -> str:
        item = obj.item
        if not item.other_id:
            return item.report.source
        first, second = item.report.source, item.other.source
        if obj.swapped:
            first, second = second, first
        return f"A: {first} / B: {second}"

    @admin.display(description="values")
    def values(self, obj: RaterItem) -> str:
        rating = getattr(obj, "rating", None)
        if rating is None:
            return "–"
        return "; ".join(_answer_text(k, v) for k, v in rating.values.items())

    @admin.display(description="seconds")
    def seconds_shown(self, obj: RaterItem) -> str:
        rating = getattr(obj, "rating", None)
        return f"{(rating.seconds if rating else obj.seconds):.1f}"

    @admin.display(description="submitted")
    def submitted_at(self, obj: RaterItem) -> str:
        rating = getattr(obj, "rating", None)
        return f"{rating.submitted_at:%Y-%m-%d %H:%M}" if rating else "–"

    @admin.display(description="revisions")
    def revisions(self, obj: RaterItem) -> int:
        rating = getattr(obj, "rating", None)
        return rating.revisions if rating else 0
