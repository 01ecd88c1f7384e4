"""``manage.py assign_cases``: assigns enrolled cases and prints each reader's workload."""

import io

import pytest
from django.core.management import CommandError, call_command

from tests.support.factories import CaseFactory, MembershipFactory, SiteFactory, TrialFactory
from trial.models import Assignment, Case, Role, Trial


@pytest.fixture
def trial(db) -> Trial:
    trial = TrialFactory(slug="cxr", block_sizes=[2], scp_label="Unaided")
    site = SiteFactory(trial=trial, code="H1")
    MembershipFactory(trial=trial, role=Role.COORDINATOR, site=site, user__username="coord")
    for i in range(4):
        MembershipFactory(trial=trial, role=Role.READER, site=site, user__username=f"reader{i}")
    call_command("randomize_readers", trial="cxr", stdout=io.StringIO())
    return trial


def run(**options) -> str:
    out = io.StringIO()
    call_command("assign_cases", stdout=out, **options)
    return out.getvalue()


def test_prints_the_count_of_every_reader(trial) -> None:
    CaseFactory.create_batch(6, trial=trial, site=trial.sites.get(), status=Case.Status.ENROLLED)
    out = run(trial="cxr", seed=3)
    assert Assignment.objects.count() == 12
    for i in range(4):
        assert f"reader{i}" in out
    assert "Unaided" in out
    assert "Made 12 assignment(s) for 6 case(s)." in out


def test_nothing_to_assign_is_a_command_error(trial) -> None:
    with pytest.raises(CommandError, match="nothing to assign"):
        run(trial="cxr")


def test_an_unknown_trial_is_a_command_error(trial) -> None:
    with pytest.raises(CommandError, match="unknown trial 'x'"):
        run(trial="x")


def test_an_arm_without_readers_is_a_command_error(db) -> None:
    trial = TrialFactory(slug="empty")
    MembershipFactory(trial=trial, role=Role.COORDINATOR)
    CaseFactory(trial=trial, status=Case.Status.ENROLLED)
    with pytest.raises(CommandError, match="no allocated reader in arm"):
        run(trial="empty")
