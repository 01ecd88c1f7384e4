"""Rater pages: a campaign's worklist and one item. They render what ``rating.payloads``
builds (the same payload the API returns) and leave submission to ``static/reader/rating.js``.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trial.models import Role
from trial.permissions import trial_member

from . import ratings
from .models import Campaign
from .payloads import rating_payload, worklist_payload
from .queries import rater_campaign, rater_item_of


@login_required
def rating_list_page(request: HttpRequest, trial_slug: str, campaign: int) -> HttpResponse:
    """A rater's items in their random order, with progress; ``n`` opens the next."""
    rater = trial_member(request.user, trial_slug, Role.RATER)
    trial = rater.trial
    found = rater_campaign(rater, trial, campaign)
    return render(request, "rating/list.html", {
        "trial": trial, "campaign": found, "state": worklist_payload(rater, found)})


@login_required
def rating_item_page(request: HttpRequest, trial_slug: str, campaign: int,
                     code: str) -> HttpResponse:
    """One item: image, history, reference, report(s), the instruments' scales."""
    rater = trial_member(request.user, trial_slug, Role.RATER)
    trial = rater.trial
    found = rater_campaign(rater, trial, campaign)
    rater_item = rater_item_of(rater, found, code)
    if found.status == Campaign.Status.OPEN and not hasattr(rater_item, "rating"):
        rater_item = ratings.open_item(rater_item)
    payload = rating_payload(rater_item)
    listing = worklist_payload(rater, found)
    upcoming = next((i["code"] for i in listing["items"]
                     if i["status"] != "submitted" and i["code"] != code), None)
    return render(request, "rating/item.html", {
        "trial": trial, "campaign": found, "state": payload, "list": listing,
        "viewer_images": payload["case"]["images"], "next": upcoming})
