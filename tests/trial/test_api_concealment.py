"""Allocation concealment across every admin page and API response.

A list is generated from a known seed and one reader is allocated. Then every admin page and
every API GET is fetched by the people allowed to see it: the seed never appears, and no page
shows more arm codes than there are allocated readers (so no free slot's arm leaks).
"""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from tests.support.trial_world import SEED, World, build_world
from tests.trial.test_admin_access import PAGES
from tests.trial.test_api_access import GETS, fill
from trial.models import AllocationSlot, RandomizationList

ARM_CODE = re.compile(r"(?<![\w-])(ai_assisted|scp)(?![\w-])")
FIELD_LABELS = ("Ratio scp",)  # the Trial form's label of ``ratio_scp``, not an arm


def arm_codes(html: str) -> list[str]:
    for label in FIELD_LABELS:
        html = html.replace(label, "")
    return ARM_CODE.findall(html)



@pytest.fixture
def world(db) -> World:
    world = build_world()
    assert AllocationSlot.objects.filter(randomization=world.rlist).count() >= 12
    return world


def allocated(world: World) -> int:
    return AllocationSlot.objects.filter(randomization=world.rlist, membership__isnull=False
                                         ).count()


def arm_values(data: object) -> list[str]:
    """Every JSON string that is an arm code, however deep."""
    if isinstance(data, dict):
        return [a for v in data.values() for a in arm_values(v)]
    if isinstance(data, list):
        return [a for v in data for a in arm_values(v)]
    return [data] if data in ("ai_assisted", "scp") else []


@pytest.mark.parametrize("role", ["coordinator", "superuser"])
def test_no_admin_page_shows_the_seed_or_a_free_slots_arm(world: World, role: str) -> None:
    client = world.client(role)
    assert allocated(world) == 1
    for page, (_, url) in PAGES.items():
        response = client.get(url(world))
        assert response.status_code == 200, page
        html = response.content.decode()
        assert str(SEED) not in html, page
        assert len(arm_codes(html)) <= allocated(world), page
        assert html.count('data-arm="') <= allocated(world), page


def test_the_allocated_arm_is_shown_where_expected(world: World) -> None:
    client = world.client("coordinator")
    arm = world.reader.arm
    for page in ("trial page", "membership list", "membership page", "assignment list"):
        html = client.get(PAGES[page][1](world)).content.decode()
        assert arm_codes(html) == [arm], page


@pytest.mark.parametrize("role", ["coordinator", "statistician", "superuser", "reader"])
def test_no_api_response_shows_the_seed_or_a_free_slots_arm(world: World, role: str) -> None:
    client = APIClient()
    client.force_authenticate(world.users[role])
    for endpoint, (url, expected) in GETS.items():
        response = client.get(fill(url, world))
        assert response.status_code == expected[role], endpoint
        assert str(SEED) not in response.content.decode(), endpoint
        if response.status_code == 200:
            assert len(arm_values(response.json())) <= allocated(world), endpoint


def test_api_allocation_table_and_members_show_exactly_the_allocated_arm(world) -> None:
    client = APIClient()
    client.force_authenticate(world.users["coordinator"])
    base = "/api/trials/trial-a"
    table = client.get(f"{base}/allocations/").json()["results"]
    assert [(r["reader"], r["arm"]) for r in table] == [("reader-a", world.reader.arm)]
    members = client.get(f"{base}/members/").json()["results"]
    arms = {m["username"]: m["arm"] for m in members if m["role"] == "reader"}
    assert arms == {"reader-a": world.reader.arm, "reader2-a": None}
    summary = client.get(f"{base}/randomization/").json()
    assert "seed" not in summary and summary["commitment"] == world.rlist.commitment
    assert summary["slots"]["allocated"] == 1


def test_a_seed_given_to_the_api_is_refused(world: World) -> None:
    """Hole 2 of the security audit: ``{"seed": 42}`` made a list anybody could recompute."""
    client = APIClient()
    client.force_authenticate(world.users["other_coordinator"])
    response = client.post("/api/trials/trial-b/randomization/generate/",
                           {"seed": 424242424242}, format="json")
    assert response.status_code == 400
    assert "draws the seed" in response.json()["seed"][0]
    assert not RandomizationList.objects.filter(trial__slug="trial-b").exists()
    response = client.post("/api/trials/trial-b/randomization/generate/", {}, format="json")
    assert response.status_code == 201
    assert arm_values(response.json()) == [] and "seed" not in response.json()
    assert RandomizationList.objects.get(trial__slug="trial-b").seed != 424242424242
