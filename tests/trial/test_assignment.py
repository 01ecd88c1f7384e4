"""Case assignment: one reader per arm per case, balanced workloads, random reproducible order."""

from collections import Counter

import pytest
from django.db import transaction

from tests.support.factories import (
    CaseFactory,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from trial import randomization as rz
from trial.assignment import AssignmentError, assign_cases
from trial.models import Assignment, AuditEvent, Case, Role, Trial


def allocated_trial(readers: int = 6, **fields) -> Trial:
    """A trial whose ``readers`` readers are allocated 1:1 (blocks of 2: exact balance)."""
    trial = TrialFactory(block_sizes=[2], **fields)
    site = SiteFactory(trial=trial, code="H1")
    for i in range(readers):
        MembershipFactory(trial=trial, role=Role.READER, site=site, user__username=f"rd{i}")
    coordinator = UserFactory()
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 1)
    rz.allocate_all(trial, by=coordinator)
    return trial


def enrolled(trial: Trial, n: int, **fields) -> list[Case]:
    return CaseFactory.create_batch(n, trial=trial, status=Case.Status.ENROLLED, **fields)


def outcome(trial: Trial) -> list[tuple[str, str, str, int]]:
    return list(Assignment.objects.filter(case__trial=trial).order_by("case__case_id", "arm")
                .values_list("case__case_id", "arm", "reader__user__username", "position"))


def test_thirty_cases_three_readers_per_arm_ten_each(db) -> None:
    trial = allocated_trial()
    enrolled(trial, 30, site=trial.sites.get())
    rows = assign_cases(trial, by=UserFactory(), seed=7)
    assert len(rows) == 60
    assert set(Counter(a.reader_id for a in rows).values()) == {10}


def test_every_case_has_exactly_one_reader_per_arm(db) -> None:
    trial = allocated_trial()
    cases = enrolled(trial, 9, site=trial.sites.get())
    assign_cases(trial, by=None, seed=7)
    for case in cases:
        assignments = case.assignments.select_related("reader__allocation_slot")
        assert sorted(a.arm for a in assignments) == ["ai_assisted", "scp"]
        assert all(a.arm == a.reader.arm for a in assignments)


def test_worklist_positions_run_one_to_n_per_reader_across_runs(db) -> None:
    trial = allocated_trial()
    site = trial.sites.get()
    enrolled(trial, 7, site=site)
    assign_cases(trial, by=None, seed=1)
    enrolled(trial, 5, site=site)
    assign_cases(trial, by=None, seed=2)
    for reader in trial.memberships.filter(role=Role.READER):
        positions = list(reader.assignments.order_by("position").values_list("position",
                                                                             flat=True))
        assert positions == list(range(1, len(positions) + 1))
    counts = Counter(Assignment.objects.values_list("reader_id", flat=True))
    assert set(counts.values()) == {4}


def test_the_same_seed_gives_the_same_assignment_and_order(db) -> None:
    trial = allocated_trial()
    enrolled(trial, 12, site=trial.sites.get())
    results = []
    for seed in (5, 5, 6):
        with transaction.atomic():
            assign_cases(trial, by=None, seed=seed)
            results.append(outcome(trial))
            transaction.set_rollback(True)
    assert results[0] == results[1] != results[2]


def test_only_enrolled_unassigned_cases_are_assigned_and_a_rerun_does_nothing(db) -> None:
    trial = allocated_trial(readers=2)
    site = trial.sites.get()
    enrolled(trial, 2, site=site)
    CaseFactory(trial=trial, site=site)  # screened only
    CaseFactory(trial=trial, site=site, status=Case.Status.EXCLUDED)
    assert len(assign_cases(trial, by=None, seed=1)) == 4
    assert assign_cases(trial, by=None, seed=1) == []


def test_an_arm_without_allocated_readers_is_refused(db) -> None:
    trial = TrialFactory()
    MembershipFactory(trial=trial, role=Role.READER)  # not allocated
    enrolled(trial, 1)
    with pytest.raises(AssignmentError, match="no allocated reader in arm 'AI-assisted'"):
        assign_cases(trial, by=None)
    assert not Assignment.objects.exists()


def test_same_site_assignment_keeps_cases_at_their_site(db) -> None:
    trial = TrialFactory(block_sizes=[2], stratify_by_site=True, same_site_assignment=True)
    sites = [SiteFactory(trial=trial, code=c) for c in ("H1", "H2")]
    for site in sites:
        MembershipFactory.create_batch(4, trial=trial, role=Role.READER, site=site)
        enrolled(trial, 6, site=site)
    coordinator = UserFactory()
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 3)
    rz.allocate_all(trial, by=coordinator)
    assign_cases(trial, by=coordinator, seed=3)
    rows = Assignment.objects.select_related("case", "reader")
    assert rows.count() == 24 and all(a.case.site_id == a.reader.site_id for a in rows)
    assert set(Counter(a.reader_id for a in rows).values()) == {3}


def test_same_site_without_a_reader_of_an_arm_there_is_refused(db) -> None:
    trial = allocated_trial(readers=2, same_site_assignment=True)
    other = SiteFactory(trial=trial, code="H9")
    enrolled(trial, 1, site=other, case_id="X1")
    with pytest.raises(AssignmentError, match="case X1 \\(site H9\\): no allocated"):
        assign_cases(trial, by=None)


def test_each_assignment_is_audited(db) -> None:
    trial = allocated_trial(readers=2)
    enrolled(trial, 3, site=trial.sites.get())
    user = UserFactory()
    assign_cases(trial, by=user, seed=4)
    events = AuditEvent.objects.filter(action="case.assigned", trial=trial)
    assert events.count() == 6 and all(e.actor == user for e in events)
    assert {e.after["arm"] for e in events} == {"ai_assisted", "scp"}
