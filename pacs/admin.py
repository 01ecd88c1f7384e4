"""The sites' DICOM connections in the coordinator's admin: who may send studies to the listener
(calling AE titles), the accounts that send over STOW-RS, the PACS studies are pulled from and
reports go to, and what the pulls and the report deliveries did.

Scoped like every trial admin (``trial.admin.base``): a coordinator sees and sets up only their
trials' sites; edits are audited. A sender's API token is shown once, when the sender is made;
afterwards only whether it has one ("Rotate token" makes a new one and shows it once).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from rest_framework.authtoken.models import Token

from drafting.tasks import in_process
from trial import audit
from trial.admin.base import ReadOnlyAdmin, TrialScopedAdmin, call_service, may_coordinate

from .models import CallingAE, PullItem, PullRun, RemoteNode, ReportDelivery, SiteSender

RELATED_ONLY = admin.RelatedOnlyFieldListFilter


@admin.register(CallingAE)
class CallingAEAdmin(TrialScopedAdmin):
    trial_path = "site__trial"
    audited = True
    list_display = ("ae_title", "site", "addresses", "created_at")
    list_filter = (("site__trial", RELATED_ONLY),)
    search_fields = ("ae_title",)
    fields = ("site", "ae_title", "addresses")


@admin.register(RemoteNode)
class RemoteNodeAdmin(TrialScopedAdmin):
    trial_path = "site__trial"
    audited = True
    list_display = ("name", "site", "protocol", "retrieve", "receives_reports",
                    "keep_original_uids", "pull_link")
    list_filter = (("site__trial", RELATED_ONLY), "protocol")
    fieldsets = (
        (None, {"fields": ("site", "name", "protocol", "timeout_s")}),
        ("DICOM networking (DIMSE)", {"fields": ("ae_title", "host", "port")}),
        ("DICOMweb", {"fields": ("base_url", "auth_env")}),
        ("Use", {"fields": ("retrieve", "receives_reports", "keep_original_uids")}),
    )

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "base_url":  # a PACS on the hospital's LAN usually speaks http
            kwargs["assume_scheme"] = "http"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        return [path("<int:pk>/pull/", self.admin_site.admin_view(self.pull_view),
                     name="pacs_remotenode_pull"), *super().get_urls()]

    @admin.display(description="pull")
    def pull_link(self, obj: RemoteNode) -> str:
        if not obj.retrieve:
            return "–"
        return format_html('<a href="{}">Pull studies…</a>',
                           reverse("admin:pacs_remotenode_pull", args=[obj.pk]))

    def pull_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Accession numbers in, a pull run out, with each line's outcome shown once."""
        from .pull import pull

        node = self.get_object(request, str(pk))
        if node is None or not self.has_change_permission(request, node):
            raise PermissionDenied
        form = PullForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
                   "node": node, "title": f"Pull studies from {node.name}"}
        if request.method == "POST" and form.is_valid():
            accessions = form.cleaned_data["accessions"]
            if not in_process():  # a worker pulls; the run's page follows it
                queued = self._queue_pull(request, node, accessions)
                if queued is not None:
                    return queued
                return TemplateResponse(request, "admin/pacs/remotenode/pull.html", context)
            done, run = call_service(self, request, pull, node.site, node, accessions,
                                     by=request.user, request_label="the admin's form")
            if done:
                items = list(run.items.select_related("case").order_by("line"))
                for item in items:
                    item.accession = run.accessions.get(item.line, "")
                context.update(run=run, items=items, form=PullForm())
        return TemplateResponse(request, "admin/pacs/remotenode/pull.html", context)


    def _queue_pull(self, request: HttpRequest, node: RemoteNode,
                    accessions: list[str]) -> HttpResponse | None:
        """Queue the pull on a worker and go to its run's page (None: refused, said)."""
        from .pull import queue_pull, run_queued
        from .tasks import start_pull

        done, queued = call_service(self, request, queue_pull, node.site, node, accessions,
                                    by=request.user, request_label="the admin's form")
        if not done:
            return None
        run, sealed = queued
        if start_pull(run, sealed):
            self.message_user(request, f"Pull run {run.pk} queued: this page follows it. Its "
                                       "lines are those of the list you pasted.")
        else:  # no broker to take it: done here and now
            run_queued(run, sealed)
        return HttpResponseRedirect(reverse("admin:pacs_pullrun_change", args=[run.pk]))


class PullForm(forms.Form):
    accessions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 40}), label="Accession numbers",
        help_text="One per line (blank lines are ignored).")

    def clean_accessions(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["accessions"].splitlines()]


class SenderForm(forms.ModelForm):
    username = forms.SlugField(max_length=150, help_text="The account the site's system uses "
                                                         "(no password: it signs in by token).")

    class Meta:
        model = SiteSender
        fields = ("site",)

    def clean_username(self) -> str:
        name = self.cleaned_data["username"]
        if get_user_model().objects.filter(username=name).exists():
            raise forms.ValidationError("An account with this name exists already.")
        return name


@admin.register(SiteSender)
class SiteSenderAdmin(TrialScopedAdmin):
    trial_path = "site__trial"
    audited = True
    list_display = ("user", "site", "has_token", "created_at")
    list_filter = (("site__trial", RELATED_ONLY),)
    actions = ("rotate_tokens",)

    def get_form(self, request: HttpRequest, obj: SiteSender | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = SenderForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: SiteSender | None = None):
        return ("site", "username") if obj is None else ("site", "user", "has_token")

    def get_readonly_fields(self, request: HttpRequest, obj: SiteSender | None = None):
        return () if obj is None else ("site", "user", "has_token")

    @admin.display(description="API token", boolean=True)
    def has_token(self, obj: SiteSender) -> bool:
        return Token.objects.filter(user=obj.user).exists()

    def save_model(self, request: HttpRequest, obj: SiteSender, form, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=form.cleaned_data["username"], password=None)
            obj.user = user
            super().save_model(request, obj, form, change)
            token = Token.objects.create(user=user)
            audit.record(action="dicom_sender.created", obj=obj, actor=request.user,
                         trial=obj.site.trial, after={"user": user.username,
                                                      "site": obj.site.code})
        self._show_once(request, obj, token)

    def _show_once(self, request: HttpRequest, obj: SiteSender, token: Token) -> None:
        self.message_user(request, f"The STOW-RS token of {obj.user.username} (shown once; "
                                   f"give it to the site's system): {token.key}",
                          level=messages.WARNING)

    @admin.action(description="Rotate the selected senders' tokens (the old ones stop working)")
    def rotate_tokens(self, request: HttpRequest, queryset) -> None:
        for sender in queryset.select_related("user", "site__trial"):
            if not self.has_change_permission(request, sender):
                continue
            with transaction.atomic():
                Token.objects.filter(user=sender.user).delete()
                token = Token.objects.create(user=sender.user)
                audit.record(action="dicom_sender.token_rotated", obj=sender,
                             actor=request.user, trial=sender.site.trial,
                             after={"user": sender.user.username})
            self._show_once(request, sender, token)


class PullItemInline(admin.TabularInline):
    model = PullItem
    fields = ("line", "status", "reason", "instances", "case")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        """Whoever sees the run sees its lines (the run's page checked the trial; Django asks
        without an object for the lines' query)."""
        return may_coordinate(request, None if obj is None else obj.site.trial_id)


@admin.register(PullRun)
class PullRunAdmin(ReadOnlyAdmin):
    """What each pull did, per line of the requested list (never the accession numbers)."""

    trial_path = "site__trial"
    list_display = ("created_at", "site", "node", "status", "processed", "total", "request")
    list_filter = (("site__trial", RELATED_ONLY), "status")
    fields = ("site", "node", "status", "request", "progress", "error", "requested_by",
              "created_at", "finished_at")
    readonly_fields = fields
    inlines = (PullItemInline,)
    change_form_template = "admin/pacs/pullrun/change_form.html"  # refreshes while running

    @admin.display(description="progress")
    def progress(self, obj: PullRun) -> str:
        return format_html('<progress max="{}" value="{}"></progress> {} of {} accession '
                           'number(s)', obj.total or 1, obj.processed, obj.processed, obj.total)

    def has_view_permission(self, request: HttpRequest, obj: PullRun | None = None) -> bool:
        return self._may(request, obj)


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(ReadOnlyAdmin):
    """Final reports sent to the sites' PACS; failed ones are visible here and retryable."""

    trial_path = "node__site__trial"
    list_display = ("review", "node", "status", "attempts", "short_error", "finished_at")
    list_filter = (("node__site__trial", RELATED_ONLY), "status")
    fields = ("review", "node", "status", "attempts", "error", "sop_instance_uid", "queued_at",
              "started_at", "finished_at")
    readonly_fields = fields

    @admin.display(description="error")
    def short_error(self, obj: ReportDelivery) -> str:
        return obj.error[:80] + ("…" if len(obj.error) > 80 else "")
