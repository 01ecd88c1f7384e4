"""seed_demo builds a trial like the reference one, through the real service paths."""

import io
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from trial.models import Assignment, Case, Image, Membership, Role, Trial


@pytest.fixture
def demo(db) -> Trial:
    # No simulation: these tests are about the trial built (tests/test_demo_command.py
    # covers the simulation).
    call_command("seed_demo", cases=12, excluded=2, simulate=False, throwaway=True,
                 stdout=io.StringIO())
    return Trial.objects.get(slug="demo")


def test_demo_has_the_reference_trial_people(demo: Trial) -> None:
    roles = Counter(demo.memberships.values_list("role", flat=True))
    assert roles == {
        Role.READER: 6, Role.SENIOR: 3, Role.RATER: 5, Role.COORDINATOR: 1, Role.STATISTICIAN: 1
    }
    assert demo.sites.count() == 3


def test_demo_readers_are_randomised_one_to_one_within_each_site(demo: Trial) -> None:
    readers = Membership.objects.filter(trial=demo, role=Role.READER).select_related("site")
    arms = Counter(r.arm for r in readers)
    assert arms == {"ai_assisted": 3, "scp": 3}
    for site in demo.sites.all():
        assert {r.arm for r in readers if r.site_id == site.pk} == {"ai_assisted", "scp"}


def test_demo_cases_are_synthetic_enrolled_and_assigned_once_per_arm(demo: Trial) -> None:
    assert Case.objects.filter(trial=demo, status=Case.Status.ENROLLED).count() == 12
    excluded = Case.objects.filter(trial=demo, status=Case.Status.EXCLUDED)
    assert excluded.count() == 2
    assert all(c.exclusion_reason for c in excluded)
    images = Image.objects.filter(case__trial=demo)
    assert images.count() == 14 and all(i.synthetic for i in images)
    for case in Case.objects.filter(trial=demo, status=Case.Status.ENROLLED):
        assert sorted(case.assignments.values_list("arm", flat=True)) == ["ai_assisted", "scp"]
        assert case.has_history
    assert Assignment.objects.filter(case__trial=demo).count() == 24


def test_seed_demo_refuses_a_second_run_and_keeps_it_with_if_missing(demo: Trial) -> None:
    with pytest.raises(CommandError, match="exists already"):
        call_command("seed_demo", throwaway=True, stdout=io.StringIO())
    call_command("seed_demo", if_missing=True, throwaway=True, stdout=io.StringIO())
    assert Trial.objects.filter(slug="demo").count() == 1
    assert Case.objects.filter(trial=demo).count() == 14


@pytest.mark.parametrize(("command", "args"), [
    ("seed_demo", []), ("seed_load", ["--slug", "x"]), ("simulate_trial", ["--trial", "demo"])])
def test_the_demo_commands_refuse_a_site_without_demo_mode(db, settings, command: str,
                                                          args: list[str]) -> None:
    """They make accounts with a known password (a coordinator among them) or simulated data:
    only with DEMO_MODE, or told --throwaway (a test or a benchmark stack)."""
    settings.DEMO_MODE = False
    with pytest.raises(CommandError, match="never on a trial's site"):
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not Trial.objects.exists()
