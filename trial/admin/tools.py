"""Object tools: the buttons of an admin change page that each run one service on the object.

Every tool is a POST-only view (CSRF-protected by ``admin_view``) that checks the user may
change the object, runs the tool's function, which reports its outcome as admin messages, and
goes back to the object's page. The same functions back the changelist's bulk actions. Apps
above ``trial`` add tools to the trial's page with ``TrialAdmin.add_tool`` (drafting does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

ToolFunc = Callable[[admin.ModelAdmin, HttpRequest, Any], None]


@dataclass(frozen=True)
class Tool:
    """``name`` is the URL segment; ``run(model_admin, request, obj)`` says what it did."""

    name: str
    label: str
    run: ToolFunc
    action: str = ""  # the changelist action's name; default ``<name>_action``
    action_label: str = ""  # its label in the changelist; default ``label``

    @property
    def action_name(self) -> str:
        return self.action or f"{self.name.replace('-', '_')}_action"


class ToolsMixin:
    """For a ModelAdmin: ``tools`` become URLs, POST buttons (``object_tools`` in the change
    form's context, rendered by ``admin/object_tools.html``) and bulk actions."""

    tools: tuple[Tool, ...] = ()

    def get_tools(self) -> tuple[Tool, ...]:
        return self.tools

    def tool_url_name(self, tool: Tool) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_{tool.name.replace('-', '_')}"

    def tool_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [path(f"<int:pk>/{tool.name}/", wrap(self._tool_view(tool)),
                     name=self.tool_url_name(tool)) for tool in self.get_tools()]

    def object_for_tool(self, request: HttpRequest, pk: int) -> models.Model:
        obj = self.get_object(request, str(pk))
        if obj is None or not self.has_change_permission(request, obj):
            raise PermissionDenied  # a superuser asking for an object that does not exist
        return obj

    def change_url(self, obj: models.Model) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])

    def _tool_view(self, tool: Tool) -> Callable[..., HttpResponse]:
        @require_POST
        def view(request: HttpRequest, pk: int) -> HttpResponse:
            obj = self.object_for_tool(request, pk)
            tool.run(self, request, obj)
            return HttpResponseRedirect(self.change_url(obj))

        return view

    def tool_buttons(self, obj: models.Model) -> list[dict[str, str]]:
        """What ``admin/object_tools.html`` renders: one POST form per tool."""
        return [{"url": reverse(f"admin:{self.tool_url_name(tool)}", args=[obj.pk]),
                 "label": tool.label, "name": tool.name} for tool in self.get_tools()]

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        for tool in self.get_tools():
            actions[tool.action_name] = (_bulk(tool), tool.action_name,
                                         tool.action_label or tool.label)
        return actions


def _bulk(tool: Tool) -> Callable[[admin.ModelAdmin, HttpRequest, models.QuerySet], None]:
    def action(model_admin: admin.ModelAdmin, request: HttpRequest,
               queryset: models.QuerySet) -> None:
        for obj in queryset.order_by("pk"):
            tool.run(model_admin, request, obj)

    return action
