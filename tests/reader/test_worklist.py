"""A reader's worklist: stored order, progress, next case, AI-arm cases waiting for drafts."""

from __future__ import annotations

import pytest

from drafting.models import Draft
from reader import reading as rd
from reader.worklist import next_item, progress, worklist
from tests.support.read_world import build_read_world
from trial.models import Arm, Assignment

pytestmark = pytest.mark.django_db


def test_worklist_follows_the_stored_order_and_counts_progress(tmp_path) -> None:
    world = build_read_world(tmp_path, cases=3)
    reader = world.readers[Arm.SCP]
    items = worklist(reader)
    assert [i.assignment.position for i in items] == [1, 2, 3]
    assert next_item(items).assignment.position == 1
    first = rd.open_reading(items[0].assignment, user=None)
    rd.submit(first, findings="ok", impression="ok", version=0)
    items = worklist(reader)
    assert progress(items) == (1, 3)
    assert next_item(items).assignment.position == 2


def test_an_open_reading_comes_next_before_new_cases(tmp_path) -> None:
    world = build_read_world(tmp_path, cases=3)
    reader = world.readers[Arm.SCP]
    third = Assignment.objects.get(reader=reader, position=3)
    rd.open_reading(third, user=None)
    assert next_item(worklist(reader)).assignment == third


def test_ai_arm_case_waits_while_its_draft_is_not_done(tmp_path) -> None:
    world = build_read_world(tmp_path, cases=2)
    reader = world.readers[Arm.AI_ASSISTED]
    first = Assignment.objects.get(reader=reader, position=1)
    Draft.objects.filter(case=first.case).update(status=Draft.Status.FAILED)
    items = worklist(reader)
    assert items[0].state == "waiting" and "failed" in items[0].why_waiting
    assert next_item(items).assignment.position == 2
