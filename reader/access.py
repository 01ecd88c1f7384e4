"""Who may look at a case's images: the object check behind every image URL.

A reader sees the images of cases assigned to them; a senior those of cases ready for (or in)
their review; the trial's coordinators (and superusers) all. Statisticians are not given
images. Apps above ``reader`` add their own people with ``image_access_rules`` (the rating app
lets a rater see the cases of items given to them in an open or closed campaign).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import Http404

from trial.models import Assignment, Image, Membership, Role
from trial.permissions import has_role, is_superuser, roles_of

from .review import reviewable_cases

# Each rule answers "may this user see the images of this case?"; any True is enough. Filled
# by higher apps in their ``AppConfig.ready()``, so ``reader`` never imports them.
image_access_rules: list[Callable[[object, int], bool]] = []


def senior_may_see(senior: Membership, case_id: int) -> bool:
    """The case is ready for this senior's review, or theirs (``reviewable_cases`` has both)."""
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
    if any(rule(user, case.pk) for rule in image_access_rules):
        return True
    senior = Membership.objects.filter(user=user, trial_id=case.trial_id,
                                       role=Role.SENIOR).first()  # one per role and trial
    return senior is not None and senior_may_see(senior, case.pk)


def viewable_image(user, pk: int) -> Image:
    """The image ``pk`` if ``user`` may see it; Http404 for strangers, PermissionDenied else.

    The two common answers (a coordinator of the trial, a reader assigned to the case) come
    with the image in one query: every pixel, preview and metadata request asks this."""
    images = Image.objects.select_related("case").filter(pk=pk)
    if getattr(user, "is_authenticated", False):
        images = images.annotate(
            by_coordinator=Exists(Membership.objects.filter(
                user=user, trial_id=OuterRef("case__trial_id"), role=Role.COORDINATOR)),
            by_assignment=Exists(Assignment.objects.filter(case_id=OuterRef("case_id"),
                                                           reader__user=user)))
    image = images.first()
    if image is not None and getattr(user, "is_authenticated", False) and (
            image.by_coordinator or image.by_assignment or is_superuser(user)):
        return image
    if image is not None and can_view_image(user, image):
        return image
    # Refused: say so only to members of the image's trial.
    if image is None or not (is_superuser(user) or roles_of(user, image.case.trial_id)):
        raise Http404("No such image.")
    raise PermissionDenied("You may not see this image.")
