"""Taking ratings: a rater opens an item (its clock starts) and submits every instrument.

A submitted rating is final unless the campaign allows revision (each revision audited); a
rating lands only while the campaign is open, checked under the campaign's row lock.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from trial import audit
from trial.lifecycle import check_writable

from . import instruments as inst
from .errors import InvalidAnswer, NotOpen, RatingLocked
from .models import Campaign, Item, RatedReport, RaterItem, Rating


def reports_shown(rater_item: RaterItem) -> list[RatedReport]:
    """The item's report(s) in the order this rater sees them (Report A first)."""
    item = rater_item.item
    if item.kind == Item.Kind.SINGLE:
        return [item.report]
    return [item.other, item.report] if rater_item.swapped else [item.report, item.other]


def open_item(rater_item: RaterItem) -> RaterItem:
    """Start (or restart) the clock of this visit to the item."""
    if rater_item.campaign.status != Campaign.Status.OPEN:
        raise NotOpen
    check_writable(rater_item.campaign.trial_id, "A rating")
    rater_item.opened_at = timezone.now()
    rater_item.save(update_fields=["opened_at"])
    return rater_item


def submit(rater_item: RaterItem, values: dict, *, by: Any) -> Rating:
    """Store the rater's answers: every instrument of the item, each valid. A submitted
    rating is final unless the campaign allows revision (then the change is audited)."""
    campaign = rater_item.campaign
    if campaign.status != Campaign.Status.OPEN:
        raise NotOpen
    codes = rater_item.item.instruments
    if not isinstance(values, dict):
        raise InvalidAnswer("Give the answers by instrument.")
    missing, extra = set(codes) - set(values), set(values) - set(codes)
    if missing or extra:
        raise InvalidAnswer(f"Answer exactly: {', '.join(codes)}"
                            + (f" (missing {', '.join(sorted(missing))})" if missing else "")
                            + (f" (not asked: {', '.join(sorted(extra))})" if extra else ""))
    try:
        clean = {c: inst.validate(c, values[c], radpeer_variant=campaign.radpeer_variant)
                 for c in codes}
    except ValueError as exc:
        raise InvalidAnswer(str(exc)) from exc
    now = timezone.now()
    with transaction.atomic():
        check_writable(campaign.trial_id, "A rating")
        # Closing locks the campaign's row: a rating is either in before it closed, or refused.
        if Campaign.objects.select_for_update(no_key=True).values_list(
                "status", flat=True).get(pk=campaign.pk) != Campaign.Status.OPEN:
            raise NotOpen
        locked = RaterItem.objects.select_for_update().get(pk=rater_item.pk)
        visit = (now - locked.opened_at).total_seconds() if locked.opened_at else 0.0
        locked.seconds += visit
        locked.opened_at = None
        locked.save(update_fields=["seconds", "opened_at"])
        rating = Rating.objects.filter(rater_item=locked).first()
        if rating is None:
            rating = Rating.objects.create(rater_item=locked, values=clean,
                                           seconds=locked.seconds, submitted_at=now)
            audit.record(action="rating.submitted", obj=rating, actor=by, trial=campaign.trial,
                         after={"values": clean, "seconds": rating.seconds})
            return rating
        if not campaign.allow_revision:
            raise RatingLocked("This rating is submitted and the campaign does not allow "
                               "revision.")
        before = rating.values
        rating.values, rating.seconds, rating.submitted_at = clean, locked.seconds, now
        rating.revisions += 1
        rating.save()
        audit.record(action="rating.revised", obj=rating, actor=by, trial=campaign.trial,
                     before={"values": before}, after={"values": clean,
                                                       "revision": rating.revisions})
        return rating
