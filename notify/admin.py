"""Notifications in the admin: each trial's settings (its coordinators, audited like every
set-up record), and, for superusers only, people's opt-outs and the log of what was sent."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from trial.admin.base import TrialScopedAdmin
from trial.permissions import is_superuser

from .models import Notification, NotificationPreference, NotificationSettings


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(TrialScopedAdmin):
    """A trial's e-mail notifications: on or off, and the interval (default: on, daily)."""

    audited = True
    list_display = ("trial", "enabled", "interval_hours", "updated_at")
    list_filter = ("enabled",)
    fields = ("trial", "enabled", "interval_hours")

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None):
        return ("trial",) if obj is not None else ()


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """People's own choices and the e-mail log span trials: superusers only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request.user)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return is_superuser(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request.user)

    def has_change_permission(self, request: HttpRequest,
                              obj: models.Model | None = None) -> bool:
        return is_superuser(request.user)

    def has_delete_permission(self, request: HttpRequest,
                              obj: models.Model | None = None) -> bool:
        return is_superuser(request.user)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(SuperuserOnlyAdmin):
    list_display = ("user", "email_enabled", "updated_at")
    list_filter = ("email_enabled",)
    search_fields = ("user__username", "user__email")
    raw_id_fields = ("user",)


@admin.register(Notification)
class NotificationAdmin(SuperuserOnlyAdmin):
    """Written by ``notify.send`` only: listed, never changed."""

    list_display = ("sent_at", "user", "address", "kind_list", "trial_list", "status")
    list_filter = ("status",)
    search_fields = ("user__username", "address")
    date_hierarchy = "sent_at"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).select_related("user").prefetch_related("trials")

    @admin.display(description="kinds")
    def kind_list(self, obj: Notification) -> str:
        return ", ".join(obj.kinds or [])

    @admin.display(description="trials")
    def trial_list(self, obj: Notification) -> str:
        return ", ".join(t.slug for t in obj.trials.all())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest,
                              obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest,
                              obj: models.Model | None = None) -> bool:
        return False
