"""Reader-facing pages."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trial.models import Membership


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in person's trials and roles."""
    memberships = (
        Membership.objects.filter(user=request.user).select_related("trial", "site")
        .order_by("trial__name", "role")
    )
    return render(request, "reader/home.html", {"memberships": memberships})
