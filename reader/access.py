"""Who may look at a case's images: the object check behind every image URL.

A reader sees the images of cases assigned to them; a senior those of cases ready for (or in)
their review; a rater those of cases in items given to them in an open or closed (not draft)
campaign; the trial's coordinators (and superusers) all. Statisticians are not given images.
"""

from __future__ import annotations

from trial.models import Assignment, Image, Membership, Role
from trial.permissions import has_role

from .models import Review
from .rating_models import Campaign, RaterItem


def senior_may_see(senior: Membership, case_id: int) -> bool:
    """The case is (or was) in this senior's review queue."""
    from .review import reviewable_cases

    if Review.objects.filter(case_id=case_id, senior=senior).exists():
        return True
    return reviewable_cases(senior).filter(pk=case_id).exists()


def can_view_image(user, image: Image) -> bool:
    """May ``user`` receive the pixels of ``image``?"""
    if not getattr(user, "is_authenticated", False):
        return False
    case = image.case
    if has_role(user, case.trial_id, Role.COORDINATOR):
        return True
    if Assignment.objects.filter(case_id=case.pk, reader__user=user).exists():
        return True
    if RaterItem.objects.filter(item__case_id=case.pk, rater__user=user).exclude(
            campaign__status=Campaign.Status.DRAFT).exists():
        return True
    seniors = Membership.objects.filter(user=user, trial_id=case.trial_id, role=Role.SENIOR)
    return any(senior_may_see(senior, case.pk) for senior in seniors)
