"""Questions about rating campaigns: per-rater progress, the unblinded key, the reports with
their blinding, and a rater's own campaigns and items (anything not theirs is 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import Http404

from trial import audit
from trial.errors import Conflict
from trial.lifecycle import is_locked
from trial.models import Case, Membership

from .models import Campaign, RaterItem


def progress(campaign: Campaign) -> list[dict]:
    """Per rater: items given and ratings submitted."""
    rows = (RaterItem.objects.filter(campaign=campaign).values("rater", "rater__user__username")
            .annotate(given=Count("pk"), submitted=Count("rating"))
            .order_by("rater__user__username"))
    done = {r["rater"]: r for r in rows}
    out = []
    for member in campaign.raters.select_related("user").order_by("user__username"):
        row = done.get(member.pk, {})
        out.append({"rater": member.user.get_username(), "given": row.get("given", 0),
                    "submitted": row.get("submitted", 0)})
    return out


def key_rows(campaign: Campaign) -> list[dict]:
    """The unblinded key: one row per rater item, with its sources, side and ratings."""
    items = (RaterItem.objects.filter(campaign=campaign)
             .select_related("rater__user", "item__case", "item__report", "item__other",
                             "rating")
             .order_by("rater__user__username", "position"))
    out = []
    for ri in items:
        item = ri.item
        rating = getattr(ri, "rating", None)
        out.append({
            "code": ri.code, "rater": ri.rater.user.get_username(), "position": ri.position,
            "case_id": item.case.case_id, "kind": item.kind, "report_source": item.report.source,
            "other_source": item.other.source if item.other_id else None,
            "swapped": ri.swapped, "instruments": item.instruments,
            "values": rating.values if rating else None,
            "revisions": rating.revisions if rating else 0,
            "seconds": rating.seconds if rating else ri.seconds,
            "submitted_at": rating.submitted_at if rating else None,
        })
    return out


def check_key_revealed(campaign: Campaign) -> None:
    """The key unblinds every rating: it is revealed only once the trial is locked (final)."""
    if not is_locked(campaign.trial_id):
        raise Conflict("The unblinded key is revealed once the trial is locked; until then "
                       "nobody sees which report is behind a rating.")


def reveal_key(campaign: Campaign, *, by: Any) -> list[dict]:
    """``key_rows`` after the lock; each reveal is an audit event (who, when)."""
    check_key_revealed(campaign)
    audit.record(action="campaign.key_viewed", obj=campaign, actor=by, trial=campaign.trial)
    return key_rows(campaign)


def report_rows(campaign: Campaign) -> list[dict]:
    """Each rated report with its source, the original and the shown text, and what was cut."""
    return [{"id": r.pk, "case_id": r.case.case_id, "source": r.source,
             "findings": r.findings, "impression": r.impression,
             "shown_findings": r.shown_findings, "shown_impression": r.shown_impression,
             "stripped": r.stripped}
            for r in campaign.reports.select_related("case").order_by("case__case_id", "source")]


def rater_campaigns(member: Membership) -> list[dict]:
    """A rater's campaigns (not drafts) by number only, with progress: campaign names may name
    an arm, so the rater is never shown them (blinding)."""
    mine = Q(rater_items__rater=member)
    return [{"pk": c.pk, "open": c.status == Campaign.Status.OPEN, "done": c.done,
             "total": c.total}
            for c in (Campaign.objects.filter(raters=member)
                      .exclude(status=Campaign.Status.DRAFT).order_by("pk")
                      .annotate(total=Count("rater_items", filter=mine),
                                done=Count("rater_items__rating", filter=mine)))]


def rater_may_see_case(user, case_id: int) -> bool:
    """A rater sees the images of cases in items given to them in an open or closed (not
    draft) campaign (``reader.access``)."""
    return RaterItem.objects.filter(item__case_id=case_id, rater__user=user).exclude(
        campaign__status=Campaign.Status.DRAFT).exists()


def rater_campaign(rater: Membership, trial, pk: int) -> Campaign:
    """The rater's campaign ``pk`` of ``trial``; 404 if they are not in it or it is a draft."""
    campaign = Campaign.objects.filter(pk=pk, trial=trial, raters=rater).exclude(
        status=Campaign.Status.DRAFT).first()
    if campaign is None:
        raise Http404
    return campaign


def rater_items(rater: Membership, campaign: Campaign):
    """The rater's items in their order; an unrated item of a withdrawn case is gone (offered
    to nobody any more), a rated one stays."""
    return (RaterItem.objects.filter(rater=rater, campaign=campaign)
            .exclude(item__case__status=Case.Status.WITHDRAWN, rating__isnull=True)
            .select_related("rating").order_by("position"))


def rater_item_of(rater: Membership, campaign: Campaign, code: str) -> RaterItem:
    """The rater's own item ``code`` of ``campaign``; 404 for anyone else's code."""
    found = rater_items(rater, campaign).filter(code=code).select_related(
        "item__case", "item__report", "item__other").first()
    if found is None:
        raise Http404
    found.campaign = campaign  # already loaded (and checked) by the caller
    return found
