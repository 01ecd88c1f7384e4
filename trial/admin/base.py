"""What every trial ModelAdmin shares: scoping to the trials the user coordinates.

Django's global model permissions are not used. A staff user sees and changes only rows of
trials where they hold the coordinator role; superusers see everything. Service errors become
admin messages, never tracebacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from trial import lifecycle
from trial.changes import record_edit, stored_snapshot
from trial.errors import ServiceError
from trial.models import Membership, Site, Trial
from trial.permissions import coordinated_trials, is_superuser

# The admin's one translation of refusals into messages (``error_text``).
SERVICE_ERRORS = (ServiceError, ValidationError)


def coordinated_ids(request: HttpRequest) -> set[int]:
    """Primary keys of the trials ``request.user`` coordinates, computed once per request."""
    if not hasattr(request, "_coordinated_trial_ids"):
        request._coordinated_trial_ids = set(
            coordinated_trials(request.user).values_list("pk", flat=True)
        )
    return request._coordinated_trial_ids


def may_coordinate(request: HttpRequest, trial_id: int | None) -> bool:
    """Coordinator of that trial, or of some trial when ``trial_id`` is None; superusers always."""
    if is_superuser(request.user):
        return True
    ids = coordinated_ids(request)
    return bool(ids) if trial_id is None else trial_id in ids


SHOWN_PROBLEMS = 50


def error_text(exc: Exception) -> str:
    """The message of a service error; a refused file shows each problem on its own line."""
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    problems = getattr(exc, "problems", None)
    if problems and (len(problems) > 1 or getattr(exc, "list_one_problem", False)):
        heading = getattr(exc, "problems_heading", "") or "Refused:"
        shown = problems[:SHOWN_PROBLEMS]  # a message lives in the session: keep it small
        more = (format_html("<li>and {} more</li>", len(problems) - len(shown))
                if len(problems) > len(shown) else "")
        return format_html("{}<ul>{}{}</ul>", heading,
                           format_html_join("", "<li>{}</li>", ((p,) for p in shown)), more)
    return str(exc) or exc.__class__.__name__


def call_service(
    model_admin: admin.ModelAdmin, request: HttpRequest, func: Callable[..., Any],
    *args: Any, **kwargs: Any,
) -> tuple[bool, Any]:
    """Run a service function; on a service error show it as an ERROR message instead."""
    try:
        return True, func(*args, **kwargs)
    except SERVICE_ERRORS as exc:
        model_admin.message_user(request, error_text(exc), level=messages.ERROR)
        return False, None


def for_each(
    model_admin: admin.ModelAdmin, request: HttpRequest, objects: Iterable[models.Model],
    func: Callable[[models.Model], Any], done: str,
) -> int:
    """Apply ``func`` to each object; one success summary and one error message per failure."""
    ok = 0
    for obj in objects:
        try:
            func(obj)
        except SERVICE_ERRORS as exc:
            model_admin.message_user(request, f"{obj}: {error_text(exc)}", level=messages.ERROR)
        else:
            ok += 1
    if ok:
        model_admin.message_user(request, f"{done}: {ok}.", level=messages.SUCCESS)
    return ok


def arm_html(trial: Trial, arm: str | None) -> str:
    """An allocated arm, labelled as the trial names it (``data-arm`` keeps the code)."""
    if not arm:
        return "–"
    return format_html('<span class="arm" data-arm="{}">{}</span>', arm, trial.arm_label(arm))


class TrialScopedAdmin(admin.ModelAdmin):
    """Rows reachable through ``trial_path`` from a trial the user coordinates (None = a Trial)."""

    trial_path: str | None = "trial"
    audited = False  # record set-up edits in the trial's audit log

    def trial_id_of(self, obj: models.Model) -> int | None:
        if self.trial_path is None:
            return obj.pk
        trial = attrgetter(self.trial_path.replace("__", "."))(obj)
        return trial.pk if trial is not None else None

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        qs = super().get_queryset(request)
        if is_superuser(request.user):
            return qs
        field = "pk" if self.trial_path is None else self.trial_path
        return qs.filter(**{f"{field}__in": coordinated_ids(request)})

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        """Out of scope (or absent) is 403 for non-superusers, so nothing is revealed."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None and not is_superuser(request.user):
            raise PermissionDenied
        return obj

    def _may(self, request: HttpRequest, obj: models.Model | None) -> bool:
        if obj is None:
            return may_coordinate(request, None)
        trial_id = self.trial_id_of(obj)
        if trial_id is None:  # e.g. an audit event of no trial
            return is_superuser(request.user)
        return may_coordinate(request, trial_id)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_coordinate(request, None)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._may(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may_coordinate(request, None)

    def _frozen(self, obj: models.Model | None) -> bool:
        """A locked trial's records are shown, never changed (``trial.lifecycle``)."""
        trial_id = self.trial_id_of(obj) if obj is not None else None
        return trial_id is not None and lifecycle.is_locked(trial_id)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._may(request, obj) and not self._frozen(obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._may(request, obj) and not self._frozen(obj)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        choices = scoped_choices(db_field.related_model, request)
        if choices is not None:
            kwargs.setdefault("queryset", choices)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: models.Model, form, change: bool) -> None:
        trial_id = self.trial_id_of(obj)
        if trial_id is not None:
            lifecycle.check_writable(trial_id, "The trial's records")
        before = stored_snapshot(obj) if change else None
        super().save_model(request, obj, form, change)
        if self.audited:
            record_edit(obj, actor=request.user, before=before)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        trial_id = self.trial_id_of(obj)
        if trial_id is not None:
            lifecycle.check_writable(trial_id, "The trial's records")
        if self.audited:
            record_edit(obj, actor=request.user, before=stored_snapshot(obj), deleted=True)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        for obj in queryset:  # one audit event per row
            self.delete_model(request, obj)


def scoped_choices(model: type[models.Model], request: HttpRequest) -> models.QuerySet | None:
    """Choices of a trial, site or membership foreign key: only the coordinated trials'."""
    if model not in (Trial, Site, Membership):
        return None
    qs = model._default_manager.all()
    if is_superuser(request.user):
        return qs
    field = "pk" if model is Trial else "trial"
    return qs.filter(**{f"{field}__in": coordinated_ids(request)})


class ReadOnlyAdmin(TrialScopedAdmin):
    """Lists and detail pages only: records written by the system, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class ScopedInline(admin.TabularInline):
    """An inline of a Trial page, editable by that trial's coordinators (and superusers)."""

    extra = 0

    def _may(self, request: HttpRequest, obj: Trial | None) -> bool:
        return may_coordinate(request, obj.pk if obj is not None else None)

    def _editable(self, obj: Trial | None) -> bool:
        """Rows of a locked trial never change (``frozen_after_setup``: not after set-up)."""
        if obj is None or obj.pk is None:
            return True
        if self.frozen_after_setup:
            return not lifecycle.design_frozen(obj) and obj.status == Trial.Status.SETUP
        return not lifecycle.is_locked(obj)

    frozen_after_setup = False

    def has_view_permission(self, request: HttpRequest, obj: Trial | None = None) -> bool:
        return self._may(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Trial | None = None) -> bool:
        return self._may(request, obj) and self._editable(obj)

    def has_change_permission(self, request: HttpRequest, obj: Trial | None = None) -> bool:
        return self._may(request, obj) and self._editable(obj)

    def has_delete_permission(self, request: HttpRequest, obj: Trial | None = None) -> bool:
        return self._may(request, obj) and self._editable(obj)
