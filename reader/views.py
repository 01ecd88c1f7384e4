"""Reader and senior pages. They render what ``reader.payloads`` builds (the same payload the API
returns) and leave saving, events and submission to ``static/reader/editor.js``, which calls
the API with the session's CSRF token."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from trial.models import Membership, Role
from trial.permissions import trial_member

from . import reading, review
from .models import Reading, Review
from .payloads import assignment_at, reading_payload, review_payload
from .review import review_items
from .worklist import next_item, progress, worklist

# What else a membership's line on the home page shows, added by higher apps (rating: a
# rater's campaigns), each returning attributes to set on the membership for the template.
home_extras: list[Callable[[Membership], dict]] = []


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in person's trials and roles, with a link to each worklist."""
    memberships = list(
        Membership.objects.filter(user=request.user).select_related("trial", "site")
        .order_by("trial__name", "role")
    )
    for member in memberships:
        for extra in home_extras:
            for name, value in extra(member).items():
                setattr(member, name, value)
    return render(request, "reader/home.html", {"memberships": memberships})


@login_required
def worklist_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """My cases in my random order; ``n`` opens the next one."""
    reader = trial_member(request.user, trial_slug, Role.READER)
    trial = reader.trial
    items = worklist(reader)
    done, total = progress(items)
    return render(request, "reader/worklist.html", {
        "trial": trial, "items": items, "done": done, "total": total,
        "next": next_item(items),
    })


@login_required
def case_page(request: HttpRequest, trial_slug: str, position: int) -> HttpResponse:
    """The reading workspace: viewer, history, editor. Opening the page opens the reading."""
    reader = trial_member(request.user, trial_slug, Role.READER)
    trial = reader.trial
    assignment = assignment_at(reader, position)
    try:
        opened = reading.open_reading(assignment, user=request.user)
    except reading.NotReady as exc:
        return render(request, "reader/not_ready.html",
                      {"trial": trial, "position": position, "why": str(exc)}, status=409)
    except reading.Withdrawn as exc:
        return render(request, "reader/withdrawn.html",
                      {"trial": trial, "position": position, "why": str(exc)}, status=409)
    payload = reading_payload(assignment, opened)
    items = worklist(reader)
    upcoming = next(
        (i for i in items if i.available and i.assignment.position != position), None
    )
    done, total = progress(items)
    return render(request, "reader/case.html", {
        "trial": trial, "state": payload, "reading": opened,
        "viewer_images": payload["case"]["images"],
        "submitted": opened.status == Reading.Status.SUBMITTED,
        "next": upcoming, "done": done, "total": total,
    })


@login_required
def review_list_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """Cases whose two readings are in, for the senior to finalise."""
    senior = trial_member(request.user, trial_slug, Role.SENIOR)
    trial = senior.trial
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
    senior = trial_member(request.user, trial_slug, Role.SENIOR)
    trial = senior.trial
    case = review.reviewable_cases(senior).filter(pk=case_pk).first()
    if case is None:
        raise Http404
    opened = review.open_review(case, senior=senior)
    payload = review_payload(opened)
    items = review_items(senior)
    upcoming = next((i for i in items if i["status"] in ("open", "ready")
                     and i["case_pk"] != case_pk), None)
    return render(request, "reader/review.html", {
        "trial": trial, "state": payload, "viewer_images": payload["case"]["images"],
        "signed": opened.status == Review.Status.SIGNED, "next": upcoming,
    })
