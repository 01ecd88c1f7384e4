"""Reader and senior pages. They render what ``reader.state`` builds (the same payload the API
returns) and leave saving, events and submission to ``static/reader/editor.js``, which calls
the API with the session's CSRF token."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from trial.models import Membership, Role, Trial

from . import campaigns as rating_svc
from . import reading as svc
from . import review as review_svc
from .api import review_items
from .models import Reading, Review
from .rating_api import rater_campaign, rater_item_of, worklist_payload
from .rating_models import Campaign
from .state import assignment_at, rating_payload, reading_payload, require_role, review_payload
from .worklist import next_item, progress, worklist


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in person's trials and roles, with a link to each worklist."""
    memberships = list(
        Membership.objects.filter(user=request.user).select_related("trial", "site")
        .order_by("trial__name", "role")
    )
    # A rater's campaigns, by number only: campaign names may name an arm (blinding).
    for member in memberships:
        member.rating_campaigns = []
        if member.role != Role.RATER:
            continue
        mine = Q(rater_items__rater=member)
        for campaign in (Campaign.objects.filter(raters=member)
                         .exclude(status=Campaign.Status.DRAFT).order_by("pk")
                         .annotate(total=Count("rater_items", filter=mine),
                                   done=Count("rater_items__rating", filter=mine))):
            member.rating_campaigns.append({"pk": campaign.pk, "open": campaign.status
                                            == Campaign.Status.OPEN, "done": campaign.done,
                                            "total": campaign.total})
    return render(request, "reader/home.html", {"memberships": memberships})


def _trial(slug: str) -> Trial:
    return get_object_or_404(Trial, slug=slug)


@login_required
def worklist_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """My cases in my random order; ``n`` opens the next one."""
    trial = _trial(trial_slug)
    reader = require_role(request.user, trial, Role.READER)
    items = worklist(reader)
    done, total = progress(items)
    return render(request, "reader/worklist.html", {
        "trial": trial, "items": items, "done": done, "total": total,
        "next": next_item(items),
    })


@login_required
def case_page(request: HttpRequest, trial_slug: str, position: int) -> HttpResponse:
    """The reading workspace: viewer, history, editor. Opening the page opens the reading."""
    trial = _trial(trial_slug)
    reader = require_role(request.user, trial, Role.READER)
    assignment = assignment_at(reader, position)
    try:
        reading = svc.open_reading(assignment, user=request.user)
    except svc.NotReady as exc:
        return render(request, "reader/not_ready.html",
                      {"trial": trial, "position": position, "why": str(exc)}, status=409)
    payload = reading_payload(assignment, reading)
    items = worklist(reader)
    upcoming = next(
        (i for i in items if i.available and i.assignment.position != position), None
    )
    done, total = progress(items)
    return render(request, "reader/case.html", {
        "trial": trial, "state": payload, "reading": reading,
        "viewer_images": payload["case"]["images"],
        "submitted": reading.status == Reading.Status.SUBMITTED,
        "next": upcoming, "done": done, "total": total,
    })


@login_required
def review_list_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """Cases whose two readings are in, for the senior to finalise."""
    trial = _trial(trial_slug)
    senior = require_role(request.user, trial, Role.SENIOR)
    items = review_items(senior)
    done = sum(i["status"] == Review.Status.SIGNED for i in items)
    upcoming = next((i for i in items if i["status"] == "open"), None) or next(
        (i for i in items if i["status"] == "ready"), None)
    return render(request, "reader/reviews.html", {
        "trial": trial, "items": items, "done": done, "total": len(items), "next": upcoming,
    })


@login_required
def review_page(request: HttpRequest, trial_slug: str, case_pk: int) -> HttpResponse:
    """The senior's workspace: viewer, history, Report 1 and 2, the final report."""
    trial = _trial(trial_slug)
    senior = require_role(request.user, trial, Role.SENIOR)
    case = review_svc.reviewable_cases(senior).filter(pk=case_pk).first()
    if case is None:
        raise Http404
    review = review_svc.open_review(case, senior=senior)
    payload = review_payload(review)
    items = review_items(senior)
    upcoming = next((i for i in items if i["status"] in ("open", "ready")
                     and i["case_pk"] != case_pk), None)
    return render(request, "reader/review.html", {
        "trial": trial, "state": payload, "viewer_images": payload["case"]["images"],
        "signed": review.status == Review.Status.SIGNED, "next": upcoming,
    })


@login_required
def rating_list_page(request: HttpRequest, trial_slug: str, campaign: int) -> HttpResponse:
    """A rater's items in their random order, with progress; ``n`` opens the next."""
    trial = _trial(trial_slug)
    rater = require_role(request.user, trial, Role.RATER)
    found = rater_campaign(rater, trial, campaign)
    return render(request, "reader/rating_list.html", {
        "trial": trial, "campaign": found, "state": worklist_payload(rater, found)})


@login_required
def rating_item_page(request: HttpRequest, trial_slug: str, campaign: int,
                     code: str) -> HttpResponse:
    """One item: image, history, reference, report(s), the instruments' scales."""
    trial = _trial(trial_slug)
    rater = require_role(request.user, trial, Role.RATER)
    found = rater_campaign(rater, trial, campaign)
    rater_item = rater_item_of(rater, found, code)
    if found.status == Campaign.Status.OPEN and not hasattr(rater_item, "rating"):
        rater_item = rating_svc.open_item(rater_item)
    payload = rating_payload(rater_item)
    listing = worklist_payload(rater, found)
    upcoming = next((i["code"] for i in listing["items"]
                     if i["status"] != "submitted" and i["code"] != code), None)
    return render(request, "reader/rating_item.html", {
        "trial": trial, "campaign": found, "state": payload, "list": listing,
        "viewer_images": payload["case"]["images"], "next": upcoming})
