"""``manage.py randomize_readers``: makes the list if needed, allocates, prints only allocations."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory
from trial.models import AllocationSlot, RandomizationList, Role, Trial


@pytest.fixture
def trial(db) -> Trial:
    trial = TrialFactory(slug="cxr", ai_assisted_label="With AI draft", scp_label="Unaided")
    MembershipFactory(trial=trial, role=Role.COORDINATOR, user__username="coord")
    for i in range(4):
        MembershipFactory(trial=trial, role=Role.READER, user__username=f"reader{i}")
    return trial


def run(**options) -> str:
    out = io.StringIO()
    call_command("randomize_readers", stdout=out, **options)
    return out.getvalue()


def test_generates_allocates_and_prints_the_table(trial) -> None:
    out = run(trial="cxr")
    assert AllocationSlot.objects.filter(membership__isnull=False).count() == 4
    for i in range(4):
        assert f"reader{i}" in out
    assert "With AI draft" in out or "Unaided" in out
    assert "Allocated 4 reader(s) now; 4 in all." in out
    assert RandomizationList.objects.get(trial=trial).created_by.username == "coord"


def test_never_prints_the_seed_or_a_free_slot(trial) -> None:
    out = run(trial="cxr")
    rl = RandomizationList.objects.get(trial=trial)
    assert str(rl.seed) not in out
    assert out.count("#") == 4  # one slot per allocated reader, none of the 8 free ones
    assert rl.slots.filter(membership=None).count() >= 8


def test_uses_the_existing_list_and_a_fresh_seed_when_none_given(trial) -> None:
    first = run(trial="cxr")
    rl = RandomizationList.objects.get(trial=trial)
    assert rl.seed is not None and str(rl.seed) not in first
    MembershipFactory(trial=trial, role=Role.READER, user__username="late")
    out = run(trial="cxr")
    assert "late" in out and "Allocated 1 reader(s) now; 5 in all." in out
    assert RandomizationList.objects.filter(trial=trial).count() == 1


def test_imports_a_csv_list(trial, tmp_path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("position,arm\n1,scp\n2,scp\n3,ai_assisted\n4,ai_assisted\n")
    run(trial="cxr", list=str(path))
    arms = AllocationSlot.objects.order_by("position").values_list("arm", flat=True)
    assert list(arms) == ["scp", "scp", "ai_assisted", "ai_assisted"]
    rlist = RandomizationList.objects.get(trial=trial)
    assert rlist.source_name == "list.csv" and rlist.seed is None
    assert rlist.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_invalid_csv_list_is_a_command_error(trial, tmp_path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("position,arm\n1,AI\n")
    with pytest.raises(CommandError, match="unknown arm 'AI'"):
        run(trial="cxr", list=str(path))
    assert not RandomizationList.objects.exists()


def test_an_unknown_trial_is_a_command_error(trial) -> None:
    with pytest.raises(CommandError, match="unknown trial 'nope'; known trials: cxr"):
        run(trial="nope")


def test_nothing_to_do_is_a_command_error(trial) -> None:
    run(trial="cxr")
    with pytest.raises(CommandError, match="nothing to do"):
        run(trial="cxr")


def test_an_exhausted_list_still_prints_what_was_allocated(db, tmp_path) -> None:
    trial = TrialFactory(slug="small", stratify_by_site=True)
    site = SiteFactory(trial=trial, code="H1")
    MembershipFactory(trial=trial, role=Role.COORDINATOR, user__username="coord")
    for i in range(3):
        MembershipFactory(trial=trial, role=Role.READER, site=site, user__username=f"r{i}")
    path = tmp_path / "list.csv"
    path.write_text("position,arm,stratum\n1,scp,H1\n2,ai_assisted,H1\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="list exhausted: .*stratum 'H1' has 2 slot"):
        call_command("randomize_readers", trial="small", list=str(path), stdout=out)
    assert "r0" in out.getvalue() and "r1" in out.getvalue() and "r2" not in out.getvalue()
    assert "Allocated 2 reader(s) now" in out.getvalue()


def test_nobody_chooses_the_seed(trial) -> None:
    """Hole 2 of the security audit: a chosen seed makes a list anybody can recompute."""
    with pytest.raises(CommandError, match="unrecognized arguments: --seed"):
        call_command("randomize_readers", "--trial", "cxr", "--seed", "42")
    assert not RandomizationList.objects.exists()
    run(trial="cxr")
    assert RandomizationList.objects.get(trial=trial).seed != 42


def test_a_list_for_a_trial_that_has_one_is_refused(trial, tmp_path) -> None:
    run(trial="cxr")
    MembershipFactory(trial=trial, role=Role.READER)
    path = tmp_path / "list.csv"
    path.write_text("position,arm\n1,scp\n2,ai_assisted\n")
    with pytest.raises(CommandError, match="already has its randomisation list"):
        run(trial="cxr", list=str(path))


def test_without_a_single_coordinator_by_is_required(db) -> None:
    trial = TrialFactory(slug="nocoord")
    MembershipFactory(trial=trial, role=Role.READER)
    with pytest.raises(CommandError, match="has 0 coordinators; say who runs this with --by"):
        run(trial="nocoord")
    MembershipFactory(trial=trial, role=Role.COORDINATOR, user__username="boss")
    assert "Allocated 1 reader(s) now" in run(trial="nocoord", by="boss")
