"""The dashboard's link on the home page, for a trial's coordinators and statisticians."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from trial.models import Membership, Role


def home_link(member: Membership) -> dict:
    """``dashboard_url`` for the home page's line of a coordinator or statistician (nothing
    while the root URLconf does not mount ``monitor.urls``)."""
    if member.role not in (Role.COORDINATOR, Role.STATISTICIAN):
        return {}
    try:
        return {"dashboard_url": reverse("monitor:dashboard", args=[member.trial.slug])}
    except NoReverseMatch:
        return {}
