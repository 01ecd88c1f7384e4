"""Changing who holds which role, in ways that keep the trial's record consistent.

A membership is a person's role in a trial, and the readings, reviews, ratings and allocation
made in that role point at it. So a membership never changes person or role once it exists (a
new role is a new membership), is never removed while anything points at it, and the last
coordinator of a trial is never removed or demoted (nobody could run the trial any more).

People are added here too (``add_membership``; an invitation, ``accounts.invitations``, calls
it), and accounts are switched off and on (``deactivate``, ``reactivate``). An account is
shared by every trial its person belongs to, so switching it off (Django's ``is_active``: no
sign-in, sessions and API tokens stop working; memberships, readings, reviews and ratings all
stay) is a decision for everyone who runs those trials. The rule (``check_manages``):

- a coordinator changes an account only when *every* role of that person is in a trial they
  coordinate; never a superuser's account, never their own;
- a superuser changes any account but their own;
- the last active coordinator of a trial is never switched off (nobody could run it);
- for a person who also belongs to a trial they do not coordinate, a coordinator may only end
  the role in their own trial (``check_delete``: when nothing points at it) or ask a superuser.
  The one change an invitation makes to such an account is ``is_staff`` for a new coordinator
  role (the admin is where coordinators work; it shows them only their own trials).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet

from . import audit, lifecycle
from .changes import record_edit
from .errors import Conflict, Invalid, ServiceError
from .models import Membership, Role, Site, Trial
from .permissions import coordinated_trials, is_superuser


def _records(member: Membership) -> list[str]:
    """What points at ``member`` (any app's rows, found through the model's relations)."""
    found = []
    for relation in member._meta.related_objects:
        if relation.one_to_one:
            if relation.related_model._default_manager.filter(
                    **{relation.field.name: member}).exists():
                found.append(str(relation.related_model._meta.verbose_name))
        elif relation.related_model._default_manager.filter(
                **{relation.field.name: member}).exists():
            found.append(str(relation.related_model._meta.verbose_name_plural))
    return sorted(set(found))


def _last_coordinator(member: Membership) -> bool:
    """Is ``member`` the trial's last coordinator who can still sign in (a deactivated
    coordinator runs nothing)?"""
    return member.role == Role.COORDINATOR and not Membership.objects.filter(
        trial_id=member.trial_id, role=Role.COORDINATOR, user__is_active=True,
    ).exclude(pk=member.pk).exists()


def check_change(member: Membership, changes: Mapping[str, Any]) -> None:
    """Refuse (409) a change of person, role or trial of an existing membership."""
    if member.pk is None:
        return
    stored = Membership.objects.get(pk=member.pk)
    moved = [name for name, attr in (("user", "user_id"), ("role", "role"), ("trial", "trial_id"))
             if name in changes and getattr(changes[name], "pk", changes[name])
             != getattr(stored, attr)]
    if moved:
        raise Conflict(f"{', '.join(moved)} of a membership never change (the trial's records "
                       "in that role point at it): add a new membership for a new role.")


def check_delete(member: Membership) -> None:
    """Refuse (409) removing the last coordinator, or a membership anything points at."""
    if _last_coordinator(member):
        raise Conflict("This is the trial's last coordinator: add another coordinator first, "
                       "or nobody could run the trial.")
    records = _records(member)
    if records:
        raise Conflict(f"{member} has records in this role ({', '.join(records)}): the "
                       "membership stays, so the record stays whole.")


# --- adding people, and switching accounts off and on (the rule: module docstring) ------

class NotYours(ServiceError):
    """The account is not one the person asking may change (403)."""

    status = 403


# Roles that need a site: readers are randomised (stratified by site) and assigned cases by
# site. A senior without a site reviews every site's cases; the others work trial-wide.
SITE_ROLES = frozenset({Role.READER})


def check_site(trial: Trial, role: str, site: Site | None) -> None:
    """Refuse (400) a site of another trial, or no site for a role that needs one."""
    if site is not None and site.trial_id != trial.pk:
        raise Invalid("This site belongs to another trial.")
    if site is None and role in SITE_ROLES:
        raise Invalid(f"A {Role(role).label.lower()} needs a site: choose one of the trial's "
                      "sites (add the site to the trial first if it is missing).")


def add_membership(trial: Trial, user: Any, role: str, *, by: Any, site: Site | None = None,
                   years_experience: int | None = None) -> Membership:
    """Give ``user`` the role ``role`` in ``trial`` (audited as a set-up edit, like the admin's);
    refused for a locked trial, a site of another trial, a missing site, or a role held
    already."""
    lifecycle.check_writable(trial, "The trial's people")
    if role not in Role.values:
        raise Invalid(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    check_site(trial, role, site)
    if Membership.objects.filter(trial=trial, user=user, role=role).exists():
        raise Conflict(f"{user.get_username()} is {Role(role).label.lower()} of {trial} "
                       "already.")
    with transaction.atomic():
        member = Membership(trial=trial, user=user, role=role, site=site,
                            years_experience=years_experience)
        member.full_clean()
        member.save()
        record_edit(member, actor=by, before=None)
    return member


def people_of(trial_ids: Iterable[int], *, model: Any = None) -> QuerySet:
    """The accounts with a role in one of ``trial_ids`` (rows of ``model``, a proxy of the
    user model, if given)."""
    manager = (model or get_user_model())._default_manager
    return manager.filter(
        pk__in=Membership.objects.filter(trial_id__in=list(trial_ids)).values("user_id"))


def people_seen_by(by: Any, *, model: Any = None) -> QuerySet:
    """The accounts ``by`` sees and may choose from: everyone for a superuser, else the people
    of the trials ``by`` coordinates (never another trial's people)."""
    if is_superuser(by):
        return (model or get_user_model())._default_manager.all()
    return people_of(coordinated_trials(by).values_list("pk", flat=True), model=model)


def outside_trials(user: Any, by: Any) -> bool:
    """Does ``user`` hold a role in a trial that ``by`` does not coordinate?"""
    return Membership.objects.filter(user=user).exclude(
        trial__in=coordinated_trials(by)).exists()


def check_manages(by: Any, user: Any, verb: str) -> None:
    """Refuse (403) unless ``by`` may change ``user``'s account (the rule above)."""
    name = user.get_username()
    if by is not None and getattr(by, "pk", None) == user.pk:
        raise NotYours(f"You cannot {verb} your own account.")
    if is_superuser(by):
        return
    if user.is_superuser:
        raise NotYours(f"{name} is a superuser: only a superuser can {verb} the account.")
    if not Membership.objects.filter(user=user, trial__in=coordinated_trials(by)).exists():
        raise NotYours(f"{name} has no role in a trial you coordinate.")
    if outside_trials(user, by):
        raise NotYours(f"{name} also has a role in a trial you do not coordinate, so the "
                       f"account is not yours to {verb}: remove their role in your trial (if "
                       "nothing points at it) or ask a superuser.")


def may_manage(by: Any, user: Any) -> bool:
    try:
        check_manages(by, user, "change")
    except NotYours:
        return False
    return True


def record_account(action: str, user: Any, *, by: Any, **after: Any) -> None:
    """One audit event per trial ``user`` belongs to (a person without a trial: one), on the
    user model's row whatever proxy ``user`` is."""
    if user._meta.proxy:
        user = get_user_model()._default_manager.get(pk=user.pk)
    trials = list(Trial.objects.filter(memberships__user=user).distinct())
    for trial in trials or [None]:
        audit.record(action=action, obj=user, actor=by, trial=trial,
                     after={"username": user.get_username(), **after})


def deactivate(user: Any, *, by: Any) -> None:
    """Switch ``user``'s account off: no sign-in, sessions and API tokens stop working; their
    memberships, readings, reviews and ratings stay as they are. Audited."""
    check_manages(by, user, "deactivate")
    users = get_user_model()._default_manager
    coordinated = Membership.objects.filter(user=user, role=Role.COORDINATOR).values("trial_id")
    with transaction.atomic():
        # The person's row and their fellow coordinators' rows, locked in one order: two
        # coordinators switching each other off at once cannot leave a trial without one.
        fellows = Membership.objects.filter(trial_id__in=coordinated, role=Role.COORDINATOR)
        list(users.select_for_update().filter(
            Q(pk=user.pk) | Q(pk__in=fellows.values("user_id"))).order_by("pk"))
        locked = users.get(pk=user.pk)
        if not locked.is_active:
            raise Conflict(f"{user.get_username()} is deactivated already.")
        alone = [m.trial for m in Membership.objects.filter(user=user, role=Role.COORDINATOR)
                 .select_related("trial").order_by("trial__name")
                 if not Membership.objects.filter(
                     trial_id=m.trial_id, role=Role.COORDINATOR, user__is_active=True)
                 .exclude(user=user).exists()]
        if alone:
            raise Conflict(f"{user.get_username()} is the last active coordinator of "
                           f"{', '.join(str(t) for t in alone)}: add another coordinator "
                           "first, or nobody could run the trial.")
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        user.is_active = False
        record_account("account.deactivated", locked, by=by)


def reactivate(user: Any, *, by: Any) -> None:
    """Switch a deactivated account on again (same password, same two-factor device)."""
    check_manages(by, user, "reactivate")
    with transaction.atomic():
        locked = get_user_model()._default_manager.select_for_update().get(pk=user.pk)
        if locked.is_active:
            raise Conflict(f"{user.get_username()} is active already.")
        locked.is_active = True
        locked.save(update_fields=["is_active"])
        user.is_active = True
        record_account("account.reactivated", locked, by=by)
