"""The names blinding removes from reports: everyone and everything that could have written one."""

from __future__ import annotations

import pytest

from drafting.models import Draft, ModelEndpoint
from reader.blinding import authorship_names
from tests.support.factories import MembershipFactory, UserFactory
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path, cases=3)


def test_names_are_the_trials_people_models_and_extras(world: ReadWorld, tmp_path,
                                                       django_assert_max_num_queries) -> None:
    user = UserFactory(username="jdoe", first_name="Jane", last_name="Doe")
    MembershipFactory(trial=world.trial, user=user, role=Role.READER)
    MembershipFactory(trial=world.trial, user=user, role=Role.RATER)  # twice: once in the set
    only_first = UserFactory(username="solo", first_name="Ann", last_name="")
    MembershipFactory(trial=world.trial, user=only_first, role=Role.RATER)
    ModelEndpoint.objects.filter(trial=world.trial).update(name="Site model",
                                                           model_name="cxr-gen-7")
    Draft.objects.filter(case=world.cases[0]).update(model_reported="cxr-gen-7b")
    Draft.objects.filter(case=world.cases[1]).update(model_reported="cxr-gen-7b")
    Draft.objects.filter(case=world.cases[2]).update(model_reported="")
    other = build_read_world(tmp_path / "other", cases=1)
    Draft.objects.filter(case__trial=other.trial).update(model_reported="elsewhere-model")

    with django_assert_max_num_queries(3):
        names = authorship_names(world.trial, extra=["Source A"])

    people = {m.user for m in world.trial.memberships.select_related("user")}
    expected_people = {u.get_username() for u in people} | {
        u.get_full_name() for u in people if u.get_full_name()}
    assert {"jdoe", "Jane Doe", "solo", "Ann"} <= names
    assert expected_people <= names
    assert {"Site model", "cxr-gen-7", "cxr-gen-7b", "Source A"} <= names
    assert "elsewhere-model" not in names  # another trial's model
    assert "" not in names
    assert names == expected_people | {"Site model", "cxr-gen-7", "cxr-gen-7b", "Source A"} | {
        e.name for e in world.trial.model_endpoints.all()} | {
        e.model_name for e in world.trial.model_endpoints.all() if e.model_name} | set(
        Draft.objects.filter(case__trial=world.trial).exclude(model_reported="")
        .values_list("model_reported", flat=True))
