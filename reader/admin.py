"""Readings and final reports in the coordinator's admin: read-only, scoped to their trials.

The coordinator is unblinded (they see the arm, the reader, times, edit distances and the
implausible-reading flags); the records are written only through the reading pages and API,
never by hand here.
"""

from __future__ import annotations

from django.contrib import admin

from trial.admin.base import ReadOnlyAdmin, arm_html
from trial.signatures import signatures_of

from .models import Amendment, Reading, ReadingEvent, Review

RELATED_ONLY = admin.RelatedOnlyFieldListFilter


class EventInline(admin.TabularInline):
    model = ReadingEvent
    fields = ("kind", "at", "client_at", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None) -> bool:
        # Shown only on a reading's page, which has checked the trial's scope. (Django asks
        # with obj=None when it builds the rows' queryset: False there showed no rows at all.)
        return True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AmendmentInline(EventInline):
    model = Amendment
    fields = ("at", "by", "reason", "signature", "before_findings", "before_impression",
              "after_findings", "after_impression")
    readonly_fields = fields

    @admin.display(description="electronic signature")
    def signature(self, obj: Amendment) -> str:
        return signature_text(obj)


def signature_text(obj: object) -> str:
    """The record's electronic signatures as shown with it (printed name, time, meaning)."""
    return "; ".join(str(s) for s in signatures_of(obj)) or "Not signed."


READING_FIELDS = (
    "assignment", "status", "started_from", "draft", "deviation", "findings", "impression",
    "labels", "version", "opened_at", "first_image_at", "submitted_at", "reading_time",
    "active_time", "gap", "flag_list",
)


class FlaggedFilter(admin.SimpleListFilter):
    """Readings with implausible-reading flags (any, none, or one kind)."""

    title = "flagged"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", "Any flag"), ("no", "No flag"), *Reading.Flag.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "yes":
            return queryset.exclude(flags=[])
        if value == "no":
            return queryset.filter(flags=[])
        if value in Reading.Flag.values:
            # The JSON text holds the quoted name ("contains" on JSON is PostgreSQL-only).
            return queryset.filter(flags__icontains=f'"{value}"')
        return queryset


@admin.register(Reading)
class ReadingAdmin(ReadOnlyAdmin):
    trial_path = "assignment__case__trial"
    list_display = ("case_id", "reader", "arm", "status", "started_from", "reading_time",
                    "active_time", "gap", "flag_list", "submitted_at")
    list_filter = (("assignment__case__trial", RELATED_ONLY), "status", "assignment__arm",
                   "started_from", FlaggedFilter)
    search_fields = ("assignment__case__case_id", "assignment__reader__user__username")
    list_select_related = ("assignment__case__trial", "assignment__reader__user")
    fields = READING_FIELDS
    readonly_fields = READING_FIELDS
    inlines = [AmendmentInline, EventInline]

    @admin.display(description="case", ordering="assignment__case__case_id")
    def case_id(self, obj: Reading) -> str:
        return obj.assignment.case.case_id

    @admin.display(description="reader")
    def reader(self, obj: Reading) -> str:
        return obj.assignment.reader.user.get_username()

    @admin.display(description="arm", ordering="assignment__arm")
    def arm(self, obj: Reading) -> str:
        return arm_html(obj.assignment.case.trial, obj.assignment.arm)

    @admin.display(description="reading time", ordering="reading_time_s")
    def reading_time(self, obj: Reading) -> str:
        return "–" if obj.reading_time_s is None else f"{obj.reading_time_s:.1f} s"

    @admin.display(description="active", ordering="active_time_s")
    def active_time(self, obj: Reading) -> str:
        return "–" if obj.active_time_s is None else f"{obj.active_time_s:.1f} s"

    @admin.display(description="gap", ordering="gap_s")
    def gap(self, obj: Reading) -> str:
        return f"{obj.gap_s:.1f} s"

    @admin.display(description="flags")
    def flag_list(self, obj: Reading) -> str:
        labels = dict(Reading.Flag.choices)
        return ", ".join(labels.get(flag, flag) for flag in obj.flags or []) or "–"


REVIEW_FIELDS = (
    "case", "senior", "status", "order", "started_from", "findings", "impression", "version",
    "opened_at", "signed_at", "signature", "review_time", "edit_distance_ai",
    "edit_distance_scp",
)


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    trial_path = "case__trial"
    list_display = ("case", "senior", "status", "review_time", "edit_distance_ai",
                    "edit_distance_scp", "signed_at")
    list_filter = (("case__trial", RELATED_ONLY), "status")
    search_fields = ("case__case_id",)
    list_select_related = ("case__trial", "senior__user")
    fields = REVIEW_FIELDS
    readonly_fields = REVIEW_FIELDS

    @admin.display(description="electronic signature")
    def signature(self, obj: Review) -> str:
        return signature_text(obj)

    @admin.display(description="review time", ordering="review_time_s")
    def review_time(self, obj: Review) -> str:
        return "–" if obj.review_time_s is None else f"{obj.review_time_s:.1f} s"
