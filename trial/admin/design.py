"""Trial set-up pages: the trial (sites, criteria, allocation table, tools) and its people.

Allocation concealment: slots are never listed here. The Trial page shows allocated slots
only, and a membership shows its arm only once allocated (``Membership.arm``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from trial import accounts, lifecycle, people, randomization, signatures
from trial.changes import record_edit, stored_snapshot
from trial.errors import ServiceError
from trial.models import EligibilityCriterion, Membership, Role, Site, Trial
from trial.permissions import is_superuser

from . import trial_tools
from .base import ScopedInline, TrialScopedAdmin, arm_html, for_each, may_coordinate
from .imports import import_urls
from .tools import Tool, ToolsMixin

# Fields of the "Arms and randomisation" section; those in ``lifecycle.FROZEN_DESIGN`` are
# fixed once the trial leaves set-up or has its randomisation list.
DESIGN_FIELDS = ("ratio_ai_assisted", "ratio_scp", "block_sizes", "stratify_by_site")


class SiteInline(ScopedInline):
    model = Site
    fields = ("code", "name")


class CriterionInline(ScopedInline):
    model = EligibilityCriterion
    frozen_after_setup = True  # cases are screened against them
    fields = ("kind", "code", "text", "order")


class TrialForm(forms.ModelForm):
    """The status offers only the moves the trial's state machine allows (forward)."""

    class Meta:
        model = Trial
        fields = ("name", "status")  # the admin adds its fieldsets' fields

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("status")
        if field is None:
            return
        current = self.instance.status if self.instance.pk else Trial.Status.SETUP
        allowed = {current, *lifecycle.next_statuses(current)}
        field.choices = [(v, label) for v, label in Trial.Status.choices if v in allowed]
        field.help_text = ("One way: set-up, enrolling, reading, rating, locked. Locking is "
                           "final and reveals the randomisation list and the unblinded keys.")

    signature_password = forms.CharField(
        label="Your password (to lock)", required=False, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Locking is final and is an electronic signature: re-enter your password "
                  "to sign it (your printed name, the time and the meaning are recorded).")

    def clean(self) -> dict:
        data = super().clean()
        stored = (Trial.objects.filter(pk=self.instance.pk).values_list("status", flat=True)
                  .first() if self.instance.pk else None)
        if data.get("status") == Trial.Status.LOCKED and stored != Trial.Status.LOCKED:
            try:
                signatures.verify(self.request_user, data.get("signature_password"),
                                  meaning="trial_locked", obj=self.instance, trial=self.instance)
            except ServiceError as exc:
                self.add_error("signature_password", exc.message)
        return data

    def clean_status(self) -> str:
        wanted = self.cleaned_data["status"]
        if self.instance.pk is None:
            if wanted != Trial.Status.SETUP:
                raise forms.ValidationError("A trial starts in set-up.")
            return wanted
        stored = Trial.objects.get(pk=self.instance.pk).status
        if wanted != stored:
            try:
                lifecycle.check_transition(stored, wanted)
            except ServiceError as exc:
                raise forms.ValidationError(exc.message) from exc
        return wanted


@admin.register(Trial)
class TrialAdmin(ToolsMixin, TrialScopedAdmin):
    """The trial's page. Apps above ``trial`` add their tools (``add_tool``) and read-only
    panels (``add_panel``) from their own admin modules; ``trial`` never imports them."""

    trial_path = None
    form = TrialForm
    tools = trial_tools.TOOLS
    panels: tuple[str, ...] = ()  # names of read-only fields added by other apps
    audited = True
    inlines = [SiteInline, CriterionInline]
    list_display = ("name", "slug", "registry_id", "status", "site_count", "reader_count")
    list_filter = ("status",)
    search_fields = ("name", "slug", "registry_id")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "registry_id", "status")}),
        ("Status", {"fields": ("signature_password", "lock_signature"),
                    "description": "Only to lock the trial (final): your password signs it."}),
        ("Arms and randomisation", {"fields": (
            "ai_assisted_label", "scp_label", *DESIGN_FIELDS, "randomization_summary",
            "allocation_table",
        )}),
        ("Reading", {"fields": ("same_site_assignment", "assign_on_enrolment", "report_template",
                                "allowed_modalities", "offer_without_draft",
                                "findings_checklist")}),
        ("Sign-in", {"fields": ("require_two_factor",)}),
    )

    @classmethod
    def add_tool(cls, tool: Tool) -> None:
        """A button (and bulk action) on the trial page, run by the app that owns it."""
        if tool.name not in {known.name for known in cls.tools}:
            cls.tools = (*cls.tools, tool)

    @classmethod
    def add_panel(cls, name: str, title: str, render: Callable[[Trial], str], *,
                  description: str) -> None:
        """A read-only section ``title`` of the trial page: ``render(trial)`` returns its HTML."""
        def panel(model_admin: TrialAdmin, obj: Trial) -> str:
            return render(obj) if obj.pk else "–"

        if name in cls.panels:
            return
        panel.short_description = description
        setattr(cls, name, panel)
        cls.panels = (*cls.panels, name)
        cls.fieldsets = (*cls.fieldsets, (title, {"fields": (name,)}))

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(
            n_sites=models.Count("sites", distinct=True),
            n_readers=models.Count(
                "memberships", filter=models.Q(memberships__role=Role.READER), distinct=True
            ),
        )

    @admin.display(description="sites", ordering="n_sites")
    def site_count(self, obj: Trial) -> int:
        return obj.n_sites

    @admin.display(description="readers", ordering="n_readers")
    def reader_count(self, obj: Trial) -> int:
        return obj.n_readers

    def get_readonly_fields(self, request: HttpRequest, obj: Trial | None = None):
        if obj is None:
            return ("randomization_summary", "allocation_table", "lock_signature", *self.panels)
        fixed = lifecycle.FROZEN_DESIGN if lifecycle.design_frozen(obj) else ()
        # the slug is the trial's address (API URLs, image paths): fixed once created
        return ("slug", *fixed, "randomization_summary", "allocation_table", "lock_signature",
                *self.panels)

    def get_prepopulated_fields(self, request: HttpRequest, obj: Trial | None = None) -> dict:
        return self.prepopulated_fields if obj is None else {}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request.user)  # a coordinator is made one by a superuser

    def has_delete_permission(self, request: HttpRequest, obj: Trial | None = None) -> bool:
        return is_superuser(request.user)

    @admin.display(description="randomisation list")
    def randomization_summary(self, obj: Trial) -> str:
        rlist = getattr(obj, "randomization", None)
        if rlist is None:
            return "No list yet: generate one or import the statistician's CSV."
        total = rlist.slots.count()
        taken = rlist.slots.filter(membership__isnull=False).count()
        summary = format_html(
            "{} by {} on {}; {} of {} slots allocated; commitment <code>{}</code>",
            rlist.get_method_display(), rlist.created_by, f"{rlist.created_at:%Y-%m-%d %H:%M}",
            taken, total, rlist.commitment,
        )
        extensions = format_html_join("", "<li>{}</li>", (
            (format_html("extension {} for {}: {}, {} block(s), {} slots, by {} on {}; "
                         "commitment <code>{}</code>", e.number,
                         f"stratum {e.stratum}" if e.stratum else "the list",
                         e.get_method_display().lower(), e.blocks, e.slot_count, e.created_by,
                         f"{e.created_at:%Y-%m-%d %H:%M}", e.commitment),)
            for e in rlist.extensions.select_related("created_by")
        ))
        return format_html("{}<ul>{}</ul>", summary, extensions) if extensions else summary

    @admin.display(description="signed")
    def lock_signature(self, obj: Trial) -> str:
        """The electronic signature of the lock (printed name, time, meaning)."""
        signed = signatures.signatures_of(obj) if obj.pk else []
        return "; ".join(str(s) for s in signed) or "Not locked."

    @admin.display(description="allocation table (allocated readers only)")
    def allocation_table(self, obj: Trial) -> str:
        rows = randomization.allocation_table(obj)
        if not rows:
            return "No reader allocated yet."
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (r["reader"], r["site"] or "–", arm_html(obj, r["arm"]),
                 f"{r['allocated_at']:%Y-%m-%d %H:%M}", r["allocated_by"] or "–")
                for r in rows
            ),
        )
        return format_html(
            '<table class="allocation-table"><thead><tr><th>reader</th><th>site</th>'
            "<th>arm</th><th>allocated at</th><th>by</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def save_model(self, request: HttpRequest, obj: Trial, form, change: bool) -> None:
        """A change of status goes through the state machine (audited), after the edit."""
        wanted = obj.status
        if change:
            obj.status = Trial.objects.get(pk=obj.pk).status
        super().save_model(request, obj, form, change)
        if change and wanted != obj.status:
            lifecycle.set_status(obj, wanted, by=request.user,
                                 password=form.cleaned_data.get("signature_password"))

    def get_form(self, request: HttpRequest, obj: Trial | None = None, **kwargs: Any):
        form = super().get_form(request, obj, **kwargs)
        form.request_user = request.user  # who signs a lock
        return form

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        """Sites and criteria are set-up too: audit each inline row created, changed, deleted."""
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            record_edit(obj, actor=request.user, before=stored_snapshot(obj), deleted=True)
            obj.delete()
        for obj in instances:
            before = stored_snapshot(obj)
            obj.save()
            record_edit(obj, actor=request.user, before=before)
        formset.save_m2m()

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        tools = self.tool_urls()
        tools.append(path("<int:pk>/import-list/", wrap(trial_tools.import_list_view(self)),
                          name="trial_trial_import_list"))
        tools.append(path("<int:pk>/extend-list/", wrap(trial_tools.extend_list_view(self)),
                          name="trial_trial_extend_list"))
        return tools + import_urls(wrap=wrap) + super().get_urls()

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs):
        obj = context.get("original")
        # A locked trial's records are read-only: no button that would only answer 403.
        if (obj is not None and may_coordinate(request, obj.pk)
                and obj.status != Trial.Status.LOCKED):
            context["object_tools"] = self.tool_buttons(obj)
            context["import_list_url"] = reverse("admin:trial_trial_import_list", args=[obj.pk])
            if hasattr(obj, "randomization") and obj.status != Trial.Status.LOCKED:
                context["tool_links"] = [{
                    "url": reverse("admin:trial_trial_extend_list", args=[obj.pk]),
                    "label": "Extend the list for a stratum"}]
            context["dicom_import_url"] = trial_tools.dicom_import_url(obj)
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(Membership)
class MembershipAdmin(TrialScopedAdmin):
    audited = True
    list_display = ("user", "trial", "role", "site", "years_experience", "allocated_arm")
    list_filter = (("trial", admin.RelatedOnlyFieldListFilter), "role",
                   ("site", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "user__first_name", "user__last_name")
    list_select_related = ("user", "trial", "site", "allocation_slot")
    fields = ("trial", "user", "role", "site", "years_experience", "allocated_arm")
    actions = ["allocate_selected", "unlock_sign_in"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None):
        if obj is not None and obj.arm is not None:  # allocated: who and where are final
            return ("trial", "user", "role", "site", "allocated_arm")
        if obj is not None:  # a new role is a new membership (``trial.people``)
            return ("trial", "user", "role", "allocated_arm")
        return ("allocated_arm",)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        """The person is chosen among the active people of the coordinator's own trials, never
        another trial's (a superuser: everyone); someone new comes by *Invite a person*."""
        if db_field.name == "user":
            kwargs["queryset"] = people.people_seen_by(request.user).filter(
                is_active=True).order_by("username")
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "user" and field is not None:
            field.help_text = ("People of your trials. Someone new, or from elsewhere: "
                               "Invite a person (on the Memberships or People list).")
        return field

    def has_delete_permission(self, request: HttpRequest, obj: Membership | None = None):
        if obj is not None:
            try:
                people.check_delete(obj)
            except ServiceError:
                return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        people.check_delete(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for member in queryset:  # each refusal says which membership and why
            people.check_delete(member)
        super().delete_queryset(request, queryset)

    @admin.display(description="arm")
    def allocated_arm(self, obj: Membership) -> str:
        if obj.pk is None or obj.role != Role.READER:
            return "–"
        return arm_html(obj.trial, obj.arm) if obj.arm else "not allocated"

    @admin.action(description="Unlock sign-in (after too many wrong passwords)")
    def unlock_sign_in(self, request: HttpRequest, queryset) -> None:
        for_each(self, request, queryset.select_related("user", "trial").order_by("pk"),
                 lambda m: accounts.unlock(m, by=request.user), "Sign-in unlocked")

    @admin.action(description="Allocate selected readers")
    def allocate_selected(self, request: HttpRequest, queryset) -> None:
        for_each(self, request, queryset.order_by("pk"),
                 lambda m: randomization.allocate(m, by=request.user), "Readers allocated")
