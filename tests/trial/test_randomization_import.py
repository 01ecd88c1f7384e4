"""A statistician's CSV list: a good one is stored as given; a bad one is refused, nothing kept."""

import io

import pytest

from tests.support.factories import SiteFactory, TrialFactory, UserFactory
from trial import randomization as rz
from trial.models import AllocationSlot, AuditEvent, RandomizationList, Trial

GOOD = "position,arm\n1,scp\n2,ai_assisted\n3,ai_assisted\n4,scp\n"



@pytest.fixture
def trial(db) -> Trial:
    return TrialFactory(slug="cxr")


@pytest.fixture
def stratified(db) -> Trial:
    trial = TrialFactory(stratify_by_site=True)
    SiteFactory(trial=trial, code="H1")
    SiteFactory(trial=trial, code="H2")
    return trial


def refused(trial: Trial, text: str | bytes, **kwargs) -> str:
    data = io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)
    with pytest.raises(rz.InvalidList) as caught:
        rz.import_list(trial, data, by=UserFactory(), **kwargs)
    assert not RandomizationList.objects.filter(trial=trial).exists()
    assert not AllocationSlot.objects.exists()
    return str(caught.value)


def test_a_good_list_is_stored_in_its_order(trial) -> None:
    rl = rz.import_list(trial, io.StringIO(GOOD), by=UserFactory(), source_name="list.csv",
                        expected_count=4)
    assert rl.method == "imported" and rl.seed is None and rl.source_name == "list.csv"
    assert list(rl.slots.order_by("position").values_list("arm", flat=True)) == [
        "scp", "ai_assisted", "ai_assisted", "scp"]
    assert rz.check_commitment(rl)
    assert AuditEvent.objects.filter(action="randomization.imported", trial=trial).exists()


def test_a_stratified_list_with_blocks_is_stored_per_stratum(stratified) -> None:
    text = ("position,arm,stratum,block\n1,scp,H1,1\n2,ai_assisted,H1,1\n"
            "1,ai_assisted,H2,1\n2,scp,H2,1\n3,scp,H2,2\n4,ai_assisted,H2,2\n")
    rl = rz.import_list(stratified, text.splitlines(keepends=True), by=UserFactory())
    assert rl.stratified and rl.block_sizes == [2]
    assert rl.slots.filter(stratum="H2").count() == 4
    assert rl.slots.get(stratum="H2", position=3).block == 2


def test_an_unknown_arm_is_refused_with_its_line(trial) -> None:
    message = refused(trial, "position,arm\n1,scp\n2,AI\n")
    assert "line 3: unknown arm 'AI'; expected ai_assisted or scp" in message


def test_a_duplicate_position_is_refused_with_both_lines(trial) -> None:
    message = refused(trial, "position,arm\n1,scp\n2,ai_assisted\n2,scp\n")
    assert "line 4: duplicate position 2 in the list (first on line 3)" in message


def test_a_gap_in_positions_is_refused(trial) -> None:
    message = refused(trial, "position,arm\n1,scp\n2,ai_assisted\n4,scp\n")
    assert "positions must run 1..4 without gaps; missing 3" in message


def test_a_position_that_is_not_a_number_is_refused(trial) -> None:
    assert "line 2: position 'one' is not a whole number in 1..10000" in refused(
        trial, "position,arm\none,scp\n")


def test_an_absurd_position_is_refused_without_counting_the_gap(trial) -> None:
    message = refused(trial, "position,arm\n1,scp\n999999999999,scp\n")
    assert "line 3: position '999999999999' is not a whole number in 1..10000" in message


def test_the_wrong_count_is_refused(trial) -> None:
    assert "wrong count: expected 6 slots, got 4" in refused(trial, GOOD, expected_count=6)


def test_an_unknown_stratum_is_refused(stratified) -> None:
    message = refused(stratified, "position,arm,stratum\n1,scp,H1\n1,ai_assisted,H9\n")
    assert "line 3: unknown stratum 'H9'; expected one of the trial's site codes H1, H2" in message


def test_a_stratum_in_an_unstratified_trial_is_refused(trial) -> None:
    assert "not stratified by site; expected it blank" in refused(
        trial, "position,arm,stratum\n1,scp,H1\n")


def test_a_missing_column_is_refused_with_the_expected_header(trial) -> None:
    message = refused(trial, "position,group\n1,scp\n")
    assert "line 1: missing column 'arm'" in message
    assert "unknown column 'group'" in message
    assert "expected header position,arm[,stratum][,block], got 'position,group'" in message


def test_a_stratified_trial_needs_the_stratum_column(stratified) -> None:
    assert "missing column 'stratum'" in refused(stratified, GOOD)


def test_an_empty_list_is_refused(trial) -> None:
    assert "empty list: got nothing" in refused(trial, "")
    assert "empty list: header on line 1 but no slot rows" in refused(trial, "position,arm\n\n")


def test_a_short_row_is_refused_with_its_line(trial) -> None:
    assert "line 3: got 1 values, expected 2 (position,arm)" in refused(
        trial, "position,arm\n1,scp\n2\n")


def test_a_block_split_across_the_list_is_refused(trial) -> None:
    text = "position,arm,block\n1,scp,1\n2,ai_assisted,2\n3,ai_assisted,1\n4,scp,2\n"
    assert "block 1 holds positions 1, 3; expected consecutive positions" in refused(trial, text)


def test_every_problem_is_reported_at_once(trial) -> None:
    with pytest.raises(rz.InvalidList) as caught:
        rz.import_list(trial, io.StringIO("position,arm\n1,x\n1,scp\n3,y\n"), by=UserFactory())
    assert len(caught.value.problems) == 4
    assert str(caught.value).startswith("randomisation list refused (4 problem(s))")


def test_an_uploaded_file_in_bytes_with_a_bom_is_read(trial) -> None:
    data = io.BytesIO(("\ufeff" + GOOD).encode("utf-8"))
    assert rz.import_list(trial, data, by=UserFactory()).slots.count() == 4


def test_a_file_that_is_not_utf8_is_refused(trial) -> None:
    assert "not UTF-8 text" in refused(trial, b"position,arm\n1,sc\xff\n")


def test_an_import_is_refused_when_the_trial_has_a_list(trial) -> None:
    rz.generate_list(trial, by=UserFactory(), seed_source=lambda: 1)
    with pytest.raises(rz.ListAlreadyExists):
        rz.import_list(trial, io.StringIO(GOOD), by=UserFactory())
