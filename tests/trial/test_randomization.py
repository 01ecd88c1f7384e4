"""The randomisation list: blocks hold the ratio, the seed reproduces it, it is concealed."""

from collections import Counter

import pytest

from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from trial import randomization as rz
from trial.models import AllocationSlot, AuditEvent, RandomizationList, Role, Trial


def _blocks(slots) -> dict:
    blocks: dict = {}
    for s in slots:
        blocks.setdefault((s.stratum, s.block), []).append(s)
    return blocks


@pytest.mark.parametrize(("ratio", "sizes"), [((1, 1), [2, 4]), ((2, 1), [3, 6]), ((1, 2), [3])])
def test_every_block_holds_exactly_the_ratio_over_many_seeds(ratio, sizes) -> None:
    for seed in range(300):
        planned = rz.plan_sequence(seed, strata={"": 20, "H1": 7}, ratio=ratio, block_sizes=sizes)
        for block in _blocks(planned).values():
            arms = Counter(s.arm for s in block)
            size = block[0].block_size
            assert len(block) == size and size in sizes
            assert arms["ai_assisted"] * ratio[1] == arms["scp"] * ratio[0]


def test_blocks_are_really_permuted_and_sizes_drawn_at_random() -> None:
    firsts = {rz.plan_sequence(s, strata={"": 4}, ratio=(1, 1), block_sizes=[2, 4])[0].arm
              for s in range(50)}
    sizes = {rz.plan_sequence(s, strata={"": 4}, ratio=(1, 1), block_sizes=[2, 4])[0].block_size
             for s in range(50)}
    assert firsts == {"ai_assisted", "scp"} and sizes == {2, 4}


def test_the_same_seed_gives_the_same_sequence_and_another_seed_another(db) -> None:
    user = UserFactory()
    lists = [generate(TrialFactory(), user, seed) for seed in (42, 42, 43)]
    arms = [list(rl.slots.order_by("position").values_list("position", "arm")) for rl in lists]
    assert arms[0] == arms[1] != arms[2]
    assert lists[0].commitment == lists[1].commitment != lists[2].commitment


def generate(trial: Trial, user, seed=None, **kwargs) -> RandomizationList:
    """A list from a known seed (the injected generator), or from a drawn one (None)."""
    if seed is not None:
        kwargs["seed_source"] = lambda: seed
    return rz.generate_list(trial, by=user, **kwargs)


def test_commitment_is_sha256_of_seed_and_sequence(db) -> None:
    rl = generate(TrialFactory(), UserFactory(), 7)
    assert len(rl.commitment) == 64 and rz.check_commitment(rl)
    sequence = rl.slots.values_list("stratum", "position", "arm")
    assert rz.commitment(7, sequence) == rl.commitment != rz.commitment(8, sequence)


def test_a_drawn_seed_is_recorded_and_reproduces_the_list(db) -> None:
    rl = generate(TrialFactory(), UserFactory())
    assert rl.seed is not None and 0 <= rl.seed < 2**63
    again = rz.plan_sequence(rl.seed, strata={"": 12}, ratio=(1, 1), block_sizes=[2, 4])
    assert [s.arm for s in again] == list(rl.slots.order_by("position").values_list("arm",
                                                                                    flat=True))


def test_default_length_is_at_least_twelve_whole_blocks(db) -> None:
    rl = generate(TrialFactory(block_sizes=[4]), UserFactory(), 1)
    assert rl.slots.count() == 12


def test_default_length_covers_every_reader_rounded_up_to_whole_blocks(db) -> None:
    trial = TrialFactory(block_sizes=[4])
    MembershipFactory.create_batch(13, trial=trial, role=Role.READER)
    assert generate(trial, UserFactory(), 1).slots.count() == 16


def test_stratified_list_has_one_balanced_sequence_per_site(db) -> None:
    trial = TrialFactory(stratify_by_site=True, block_sizes=[2, 4])
    for code in ("H2", "H1"):
        SiteFactory(trial=trial, code=code)
    rl = generate(trial, UserFactory(), 5, slots_per_stratum=8)
    assert rl.stratified
    for stratum in ("H1", "H2"):
        slots = list(rl.slots.filter(stratum=stratum).order_by("position"))
        assert [s.position for s in slots] == list(range(1, len(slots) + 1))
        assert len(slots) >= 8
        assert Counter(s.arm for s in slots) == {"ai_assisted": len(slots) // 2,
                                                 "scp": len(slots) // 2}


def test_two_to_one_ratio_is_used_from_the_trial(db) -> None:
    trial = TrialFactory(ratio_ai_assisted=2, ratio_scp=1, block_sizes=[3, 6])
    rl = generate(trial, UserFactory(), 3, slots_per_stratum=30)
    arms = Counter(rl.slots.values_list("arm", flat=True))
    assert arms["ai_assisted"] == 2 * arms["scp"]


def test_block_sizes_not_multiple_of_the_ratio_are_refused(db) -> None:
    trial = TrialFactory(ratio_ai_assisted=2, ratio_scp=1, block_sizes=[2, 4])
    with pytest.raises(rz.RandomizationError, match=r"\[2, 4\] are not positive multiples of 3"):
        generate(trial, UserFactory(), 1)


def test_stratified_trial_without_sites_is_refused(db) -> None:
    with pytest.raises(rz.RandomizationError, match="stratified by site but has no sites"):
        generate(TrialFactory(stratify_by_site=True), UserFactory(), 1)


def test_a_trial_has_one_list_only(db) -> None:
    trial = TrialFactory()
    first = generate(trial, UserFactory(), 1)
    slots = list(AllocationSlot.objects.filter(randomization__trial=trial).values_list("arm"))
    with pytest.raises(rz.ListAlreadyExists, match="already has a randomisation list"):
        generate(trial, UserFactory(), 2)
    assert RandomizationList.objects.get(trial=trial) == first
    assert list(first.slots.values_list("arm")) == slots


def test_the_generation_is_audited_without_the_seed(db) -> None:
    trial = TrialFactory()
    rl = generate(trial, UserFactory(), 987654321)
    event = AuditEvent.objects.get(trial=trial, action="randomization.generated")
    assert event.after["commitment"] == rl.commitment
    assert event.after["slots"] == rl.slots.count()
    assert "987654321" not in str(event.after)


def test_allocation_table_never_shows_a_free_slot(db) -> None:
    trial = TrialFactory()
    readers = MembershipFactory.create_batch(3, trial=trial, role=Role.READER)
    generate(trial, UserFactory(), 1)
    rz.allocate(readers[0], by=None)
    table = rz.allocation_table(trial)
    assert [row["reader"] for row in table] == [readers[0].user.username]
    assert set(table[0]) >= {"reader", "site", "stratum", "position", "arm", "allocated_by",
                             "allocated_at"}
    assert "block" not in table[0] and "block_size" not in table[0]


def test_allocation_table_is_empty_before_any_allocation(db) -> None:
    trial = TrialFactory()
    generate(trial, UserFactory(), 1)
    assert rz.allocation_table(trial) == []


def test_the_seed_is_revealed_only_once_the_trial_is_locked(db) -> None:
    trial = TrialFactory(status=Trial.Status.READING)
    generate(trial, UserFactory(), 31337)
    with pytest.raises(rz.RandomizationError, match="concealed until the trial is locked"):
        rz.reveal_seed(trial)
    trial.status = Trial.Status.LOCKED
    assert rz.reveal_seed(trial) == 31337
