"""Concurrent allocation on the real PostgreSQL: no reader allocated twice, no slot taken twice.

Real threads, each with its own database connection, start together at a barrier.
"""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from tests.support.factories import MembershipFactory, TrialFactory, UserFactory
from trial import randomization as rz
from trial.models import AllocationSlot, AuditEvent, Membership, Role

THREADS = 8



def run_together(calls: list[Callable[[], object]]) -> list[object]:
    """Run ``calls`` in threads released at once; results are values or raised exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.django_db(transaction=True)
def test_double_click_on_one_reader_allocates_it_once() -> None:
    trial = TrialFactory()
    reader = MembershipFactory(trial=trial, role=Role.READER)
    users = UserFactory.create_batch(THREADS)
    rz.generate_list(trial, by=users[0], seed_source=lambda: 3)
    results = run_together([
        lambda u=u: rz.allocate(Membership.objects.get(pk=reader.pk), by=u) for u in users
    ])
    won = [r for r in results if isinstance(r, AllocationSlot)]
    assert len(won) == 1 and won[0].position == 1
    assert all(isinstance(r, rz.AlreadyAllocated) for r in results if r is not won[0])
    assert AllocationSlot.objects.filter(membership__isnull=False).count() == 1
    assert AuditEvent.objects.filter(action="reader.allocated").count() == 1


@pytest.mark.django_db(transaction=True)
def test_readers_allocated_at_once_take_distinct_slots_in_sequence_order() -> None:
    trial = TrialFactory()
    readers = MembershipFactory.create_batch(THREADS, trial=trial, role=Role.READER)
    by = UserFactory()
    rl = rz.generate_list(trial, by=by, seed_source=lambda: 5)
    results = run_together([
        lambda r=r: rz.allocate(Membership.objects.get(pk=r.pk), by=by) for r in readers
    ])
    assert all(isinstance(r, AllocationSlot) for r in results), results
    taken = AllocationSlot.objects.filter(randomization=rl, membership__isnull=False)
    assert sorted(taken.values_list("position", flat=True)) == list(range(1, THREADS + 1))
    assert sorted(taken.values_list("membership_id", flat=True)) == sorted(r.pk for r in readers)
    assert AuditEvent.objects.filter(action="reader.allocated").count() == THREADS


@pytest.mark.django_db(transaction=True)
def test_two_coordinators_running_allocate_all_at_once_allocate_each_reader_once() -> None:
    trial = TrialFactory()
    readers = MembershipFactory.create_batch(6, trial=trial, role=Role.READER)
    a, b = UserFactory.create_batch(2)
    rz.generate_list(trial, by=a, seed_source=lambda: 9)
    results = run_together([lambda: rz.allocate_all(trial, by=a),
                            lambda: rz.allocate_all(trial, by=b)])
    slots = [s for r in results if isinstance(r, list) for s in r]
    assert sorted(s.membership_id for s in slots) == sorted(r.pk for r in readers)
    assert sorted(s.position for s in slots) == list(range(1, 7))
