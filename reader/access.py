"""Who may look at a case's images: the object check behind every image URL.

A reader sees the images of cases assigned to them; a senior those of cases ready for (or in)
their review; the trial's coordinators (and superusers) all. Statisticians are not given
images. Apps above ``reader`` add their own people with ``image_access_rules`` (the rating app
lets a rater see the cases of items given to them in an open or closed campaign).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404

from trial.models import Assignment, Case, Image, Membership, Role
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
    with the image in one statement, written once as SQL (``_image_and_common_access``):
    every pixel, preview and metadata request asks this, and building the same ORM query with
    its two EXISTS cost several times its round trip. Every other answer takes the full rules
    (``can_view_image``). The image's case is loaded only if asked for.
    """
    found = _image_and_common_access(user, pk)
    if found is None:
        raise Http404("No such image.")
    image, common = found
    if common or is_superuser(user) or can_view_image(user, image):
        return image
    # Refused: say so only to members of the image's trial.
    if not (is_superuser(user) or roles_of(user, image.case.trial_id)):
        raise Http404("No such image.")
    raise PermissionDenied("You may not see this image.")


def _image_and_common_access(user, pk: int) -> tuple[Image, bool] | None:
    """(image ``pk``, whether ``user`` coordinates its trial or is assigned its case), or None
    if there is no such image."""
    user_pk = user.pk if getattr(user, "is_authenticated", False) else None
    sql, fields = _access_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_pk, Role.COORDINATOR, user_pk, pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for field, value in zip(fields, row[:len(fields)], strict=True):
        for converter in _converters(field):
            value = converter(value, field.cached_col, connection)
        values.append(value)
    image = Image.from_db(connection.alias, [field.attname for field in fields], values)
    return image, bool(user_pk is not None and (row[-2] or row[-1]))


@cache
def _access_sql() -> tuple[str, list]:
    """The statement behind ``viewable_image`` and the image fields it selects, in order."""
    fields = list(Image._meta.concrete_fields)
    image, case, member, assignment = (model._meta.db_table for model in (
        Image, Case, Membership, Assignment))
    columns = ", ".join(f"i.{connection.ops.quote_name(field.column)}" for field in fields)
    return (f"SELECT {columns}, "
            f"EXISTS (SELECT 1 FROM {member} m WHERE m.user_id = %s AND m.trial_id = c.trial_id"
            " AND m.role = %s), "
            f"EXISTS (SELECT 1 FROM {assignment} a JOIN {member} r ON r.id = a.reader_id"
            " WHERE a.case_id = i.case_id AND r.user_id = %s) "
            f"FROM {image} i JOIN {case} c ON c.id = i.case_id WHERE i.id = %s"), fields


def _converters(field) -> list:
    """What the ORM applies to this field's raw value on this database (e.g. SQLite's text
    datetimes and 0/1 booleans), as its compiler would."""
    return [*connection.ops.get_db_converters(field.cached_col),
            *field.get_db_converters(connection)]
