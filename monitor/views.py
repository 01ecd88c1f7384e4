"""The trial dashboard's pages: the dashboard, its JSON (polled by ``static/monitor/
dashboard.js``) and "Retry failed drafts".

Open to the trial's coordinators and statisticians (and superusers): 404 to people with no
role in the trial (its existence is not disclosed), 403 to its other roles; retrying drafts is
the coordinators' only. Viewing is not an audit event: see ``monitor.dashboard``.

The page polls with the header ``X-Background: 1``, so an open dashboard is not activity:
an unattended one still signs its user out (``trial.middleware.IdleTimeoutMiddleware``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from trial.models import Role, Trial
from trial.permissions import is_superuser, roles_of

from . import dashboard, deliveries, drafts

VIEWERS = (Role.COORDINATOR, Role.STATISTICIAN)


def dashboard_trial(user, slug: str, *allowed: str, what: str = "see its dashboard"
                    ) -> tuple[Trial, bool]:
    """The trial and whether ``user`` coordinates it, if one of ``allowed`` (or a superuser):
    404 to people with no role in it, 403 to its other roles."""
    trial = get_object_or_404(Trial, slug=slug)
    if is_superuser(user):
        return trial, True
    roles = roles_of(user, trial)
    if roles & set(allowed):
        return trial, Role.COORDINATOR in roles
    if roles:
        who = " or ".join(Role(role).label.lower() for role in allowed)
        raise PermissionDenied(f"Only a {who} of this trial may {what}.")
    raise Http404


@login_required
@never_cache
def dashboard_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    trial, coordinator = dashboard_trial(request.user, trial_slug, *VIEWERS)
    data = dashboard.dashboard_data(trial, links=coordinator)
    config = {"url": reverse("monitor:data", args=[trial.slug]),
              "interval": dashboard.poll_seconds()}
    return render(request, "monitor/dashboard.html", {
        "trial": trial, "data": data, "config": config, "coordinator": coordinator,
        "retry_url": reverse("monitor:retry-drafts", args=[trial.slug]),
        "retry_deliveries_url": reverse("monitor:retry-deliveries", args=[trial.slug]),
    })


@never_cache
def dashboard_json(request: HttpRequest, trial_slug: str) -> JsonResponse:
    """The page's numbers; 401 JSON when signed out (the script stops polling)."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Sign in to see the dashboard.", "signed_out": True},
                            status=401)
    trial, coordinator = dashboard_trial(request.user, trial_slug, *VIEWERS)
    return JsonResponse(dashboard.dashboard_data(trial, links=coordinator))


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def retry_drafts(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """GET: what would be retried, and the confirmation; POST (confirmed): retry them all."""
    trial, _ = dashboard_trial(request.user, trial_slug, Role.COORDINATOR,
                               what="retry its drafts")
    back = reverse("monitor:dashboard", args=[trial.slug])
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        retried, left = drafts.retry_failed_drafts(trial, by=request.user)
        if retried:
            messages.success(request, f"{dashboard.plural(retried, 'failed draft')} "
                                      "re-queued.")
        if left:
            messages.warning(request, f"{dashboard.plural(left, 'draft')} left alone: retried "
                                      "or changed by someone else meanwhile.")
        if not retried and not left:
            messages.info(request, "No failed draft to retry.")
        return redirect(back)
    reasons = dashboard.failure_counts(drafts.failed_drafts(trial))
    return render(request, "monitor/retry.html", {
        "trial": trial, "count": sum(reasons.values()), "back": back,
        "reasons": list(reasons.items()),
    })


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def retry_deliveries(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """Final reports not delivered to a site's PACS. GET: the list and the confirmation;
    POST (confirmed): send them all again (coordinators)."""
    trial, _ = dashboard_trial(request.user, trial_slug, Role.COORDINATOR,
                               what="retry its report deliveries")
    back = reverse("monitor:dashboard", args=[trial.slug])
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        retried, left = deliveries.retry_failed_deliveries(trial, by=request.user)
        if retried:
            done = dashboard.plural(retried, "failed delivery", "failed deliveries")
            messages.success(request, f"{done} queued again.")
        if left:
            messages.warning(request, f"{dashboard.plural(left, 'delivery', 'deliveries')} "
                                      "left alone: retried by someone else meanwhile.")
        if not retried and not left:
            messages.info(request, "No failed delivery to retry.")
        return redirect(back)
    count, rows = deliveries.failed_rows(trial)
    return render(request, "monitor/retry_deliveries.html", {
        "trial": trial, "count": count, "back": back, "rows": [cells for _, cells in rows]})
