"""The role helpers and the DRF permission built on them: roles are per trial."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser

from tests.support.factories import MembershipFactory, TrialFactory, UserFactory
from trial.api.permissions import HasTrialRole
from trial.models import Role
from trial.permissions import (
    can_coordinate,
    coordinated_trials,
    has_role,
    is_coordinator_anywhere,
    is_superuser,
    member_trials,
    roles_of,
    trials_where,
)

pytestmark = pytest.mark.django_db



@pytest.fixture
def people():
    a, b = TrialFactory(), TrialFactory()
    coordinator = MembershipFactory(trial=a, role=Role.COORDINATOR).user
    MembershipFactory(trial=b, user=coordinator, role=Role.READER)
    reader = MembershipFactory(trial=a, role=Role.READER).user
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    return SimpleNamespace(a=a, b=b, coordinator=coordinator, reader=reader, root=root,
                           nobody=UserFactory())


def test_roles_are_per_trial(people) -> None:
    assert roles_of(people.coordinator, people.a) == {Role.COORDINATOR}
    assert roles_of(people.coordinator, people.b.pk) == {Role.READER}
    assert has_role(people.coordinator, people.a, Role.COORDINATOR)
    assert not has_role(people.coordinator, people.b, Role.COORDINATOR)
    assert can_coordinate(people.coordinator, people.a)
    assert not can_coordinate(people.coordinator, people.b)


def test_trial_lists_follow_the_roles(people) -> None:
    assert set(coordinated_trials(people.coordinator)) == {people.a}
    assert set(member_trials(people.coordinator)) == {people.a, people.b}
    assert set(trials_where(people.reader, Role.READER, Role.SENIOR)) == {people.a}
    assert not member_trials(people.nobody).exists()
    assert not member_trials(AnonymousUser()).exists()


def test_superusers_may_do_everything_unless_inactive(people) -> None:
    assert is_superuser(people.root) and has_role(people.root, people.b, Role.COORDINATOR)
    assert set(member_trials(people.root)) == {people.a, people.b}
    people.root.is_active = False
    assert not is_superuser(people.root)


def test_coordinator_anywhere(people) -> None:
    assert is_coordinator_anywhere(people.coordinator)
    assert is_coordinator_anywhere(people.root)
    assert not is_coordinator_anywhere(people.reader)
    assert not is_coordinator_anywhere(AnonymousUser())
    assert can_coordinate(people.coordinator, None) and not can_coordinate(people.reader, None)


@pytest.mark.parametrize(("who", "method", "allowed"), [
    ("coordinator", "POST", True),
    ("coordinator", "GET", True),
    ("reader", "GET", True),  # a read role
    ("reader", "POST", False),
    ("nobody", "GET", False),
    ("root", "DELETE", True),
])
def test_has_trial_role(people, who: str, method: str, allowed: bool) -> None:
    permission = HasTrialRole(Role.COORDINATOR, read_roles=[Role.READER])
    assert permission() is permission  # usable directly in ``permission_classes``
    view = SimpleNamespace(get_trial=lambda: people.a)
    request = SimpleNamespace(user=getattr(people, who), method=method)
    assert permission.has_permission(request, view) is allowed
