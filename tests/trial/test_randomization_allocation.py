"""Allocation: the next free slot of the reader's stratum, audited, final, never redone."""

from collections import Counter

import pytest
from django.db import DatabaseError, connection, transaction

from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from trial import randomization as rz
from trial.models import AllocationSlot, AuditEvent, Role, Trial


@pytest.fixture
def coordinator(db):
    return UserFactory(username="coord")


@pytest.fixture
def trial(db) -> Trial:
    return TrialFactory()


def test_a_reader_takes_the_lowest_free_position(trial, coordinator) -> None:
    first, second = MembershipFactory.create_batch(2, trial=trial, role=Role.READER)
    rl = rz.generate_list(trial, by=coordinator, seed_source=lambda: 1)
    assert rz.allocate(second, by=coordinator).position == 1
    slot = rz.allocate(first, by=coordinator)
    assert slot.position == 2 and slot.arm == rl.slots.get(position=2).arm
    assert first.arm == slot.arm


def test_allocation_records_who_when_and_an_audit_event(trial, coordinator) -> None:
    reader = MembershipFactory(trial=trial, role=Role.READER)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 1)
    slot = rz.allocate(reader, by=coordinator)
    assert slot.allocated_by == coordinator and slot.allocated_at is not None
    event = AuditEvent.objects.get(action="reader.allocated")
    assert event.actor == coordinator and event.trial == trial
    assert event.after == {"arm": slot.arm, "slot": 1, "stratum": ""}


def test_allocating_twice_is_refused_and_changes_nothing(trial, coordinator) -> None:
    reader = MembershipFactory(trial=trial, role=Role.READER)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 1)
    slot = rz.allocate(reader, by=coordinator)
    with pytest.raises(rz.AlreadyAllocated, match="already allocated"):
        rz.allocate(reader, by=coordinator)
    assert AllocationSlot.objects.get(membership=reader) == slot
    assert AllocationSlot.objects.filter(membership__isnull=False).count() == 1


def test_only_readers_are_allocated(trial, coordinator) -> None:
    rater = MembershipFactory(trial=trial, role=Role.RATER)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 1)
    with pytest.raises(rz.NotAReader, match="is a expert rater .*expected a reader"):
        rz.allocate(rater, by=coordinator)


def test_no_list_no_allocation(trial, coordinator) -> None:
    reader = MembershipFactory(trial=trial, role=Role.READER)
    with pytest.raises(rz.NoList, match="has no randomisation list"):
        rz.allocate(reader, by=coordinator)


def test_an_exhausted_list_says_so(trial, coordinator) -> None:
    readers = MembershipFactory.create_batch(3, trial=trial, role=Role.READER)
    Trial.objects.filter(pk=trial.pk).update(block_sizes=[2])
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 1, slots_per_stratum=2)
    rz.allocate(readers[0], by=coordinator)
    rz.allocate(readers[1], by=coordinator)
    with pytest.raises(rz.ListExhausted, match="has 2 slot\\(s\\), all allocated"):
        rz.allocate(readers[2], by=coordinator)


def test_stratified_allocation_uses_the_reader_site(coordinator) -> None:
    trial = TrialFactory(stratify_by_site=True)
    h1, h2 = SiteFactory(trial=trial, code="H1"), SiteFactory(trial=trial, code="H2")
    a = MembershipFactory(trial=trial, role=Role.READER, site=h2)
    b = MembershipFactory(trial=trial, role=Role.READER, site=h1)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 4)
    assert (rz.allocate(a, by=coordinator).stratum, a.allocation_slot.position) == ("H2", 1)
    assert (rz.allocate(b, by=coordinator).stratum, b.allocation_slot.position) == ("H1", 1)


def test_a_reader_without_site_in_a_stratified_trial_is_refused(coordinator) -> None:
    trial = TrialFactory(stratify_by_site=True)
    SiteFactory(trial=trial, code="H1")
    reader = MembershipFactory(trial=trial, role=Role.READER, site=None)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 4)
    with pytest.raises(rz.RandomizationError, match="has no site.*stratified by site"):
        rz.allocate(reader, by=coordinator)


def test_allocated_blocks_hold_the_ratio_in_every_stratum(coordinator) -> None:
    trial = TrialFactory(stratify_by_site=True, ratio_ai_assisted=2, block_sizes=[3, 6])
    for code in ("H1", "H2"):
        site = SiteFactory(trial=trial, code=code)
        MembershipFactory.create_batch(12, trial=trial, role=Role.READER, site=site)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 11, slots_per_stratum=12)
    rz.allocate_all(trial, by=coordinator)
    for stratum in ("H1", "H2"):
        slots = AllocationSlot.objects.filter(stratum=stratum, membership__isnull=False)
        assert Counter(slots.values_list("arm", flat=True)) == {"ai_assisted": 8, "scp": 4}


def test_allocate_all_takes_readers_in_membership_order(trial, coordinator) -> None:
    readers = MembershipFactory.create_batch(4, trial=trial, role=Role.READER)
    MembershipFactory(trial=trial, role=Role.SENIOR)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 2)
    slots = rz.allocate_all(trial, by=coordinator)
    assert [s.membership_id for s in slots] == [r.pk for r in readers]
    assert [s.position for s in slots] == [1, 2, 3, 4]


def test_allocate_all_with_nothing_to_do_says_so(trial, coordinator) -> None:
    MembershipFactory(trial=trial, role=Role.READER)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 2)
    rz.allocate_all(trial, by=coordinator)
    with pytest.raises(rz.RandomizationError, match="nothing to do: every reader is allocated"):
        rz.allocate_all(trial, by=coordinator)


def test_allocate_all_keeps_going_past_an_exhausted_stratum(coordinator) -> None:
    trial = TrialFactory(stratify_by_site=True, block_sizes=[2])
    h1, h2 = SiteFactory(trial=trial, code="H1"), SiteFactory(trial=trial, code="H2")
    MembershipFactory.create_batch(3, trial=trial, role=Role.READER, site=h1)
    late = MembershipFactory(trial=trial, role=Role.READER, site=h2)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 2, slots_per_stratum=2)
    with pytest.raises(rz.ListExhausted, match="allocated 3 reader\\(s\\), 1 not") as caught:
        rz.allocate_all(trial, by=coordinator)
    assert len(caught.value.allocated) == 3
    assert AllocationSlot.objects.filter(membership=late).exists()


def test_the_database_refuses_an_orm_change_of_an_allocated_slot(trial, coordinator) -> None:
    reader = MembershipFactory(trial=trial, role=Role.READER)
    rz.generate_list(trial, by=coordinator, seed_source=lambda: 1)
    slot = rz.allocate(reader, by=coordinator)
    other = "scp" if slot.arm == "ai_assisted" else "ai_assisted"
    with pytest.raises(DatabaseError, match="allocated and cannot be changed"), \
            transaction.atomic():
        AllocationSlot.objects.filter(pk=slot.pk).update(arm=other)
    with pytest.raises(DatabaseError, match="allocated and cannot be changed"), \
            transaction.atomic():
        slot.membership = None
        slot.save()
    with pytest.raises(DatabaseError, match="allocated and cannot be deleted"), \
            transaction.atomic():
        AllocationSlot.objects.filter(pk=slot.pk).delete()


def test_the_database_refuses_raw_sql_on_slots(trial, coordinator) -> None:
    reader = MembershipFactory(trial=trial, role=Role.READER)
    rl = rz.generate_list(trial, by=coordinator, seed_source=lambda: 1)
    slot = rz.allocate(reader, by=coordinator)
    free = rl.slots.filter(membership=None).first()
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("UPDATE trial_allocationslot SET membership_id = NULL WHERE id = %s",
                       [slot.pk])
    with pytest.raises(DatabaseError, match="arm of slot .* cannot be changed"), \
            transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE trial_allocationslot SET arm = 'x' WHERE id = %s", [free.pk])
    assert AllocationSlot.objects.get(pk=slot.pk).membership_id == reader.pk
