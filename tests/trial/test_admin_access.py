"""Who may open which admin page: a table of (role, page, expected status).

Readers, seniors, raters and statisticians are made staff here, so a 403 proves the per-trial
role check and not just Django's ``is_staff``. The coordinator of another trial sees empty
lists and gets 403 on this trial's objects.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.support.trial_world import ROLES, World, build_world

ANON, DENIED = 302, 403

# expected status per role: a list page (scoped to the user's trials) and an object page
LIST_PAGE = {"anonymous": ANON, "reader": DENIED, "senior": DENIED, "rater": DENIED,
             "statistician": DENIED, "coordinator": 200, "other_coordinator": 200,
             "superuser": 200}
OBJECT_PAGE = {**LIST_PAGE, "other_coordinator": DENIED}

PAGES = {
    "trial list": (LIST_PAGE, lambda w: reverse("admin:trial_trial_changelist")),
    "trial page": (OBJECT_PAGE, lambda w: reverse("admin:trial_trial_change",
                                                  args=[w.trial.pk])),
    "import list page": (OBJECT_PAGE, lambda w: reverse("admin:trial_trial_import_list",
                                                        args=[w.trial.pk])),
    "membership list": (LIST_PAGE, lambda w: reverse("admin:trial_membership_changelist")),
    "membership page": (OBJECT_PAGE, lambda w: reverse("admin:trial_membership_change",
                                                       args=[w.reader.pk])),
    "membership add": (LIST_PAGE, lambda w: reverse("admin:trial_membership_add")),
    "case list": (LIST_PAGE, lambda w: reverse("admin:trial_case_changelist")),
    "case page": (OBJECT_PAGE, lambda w: reverse("admin:trial_case_change", args=[w.case.pk])),
    "case screening": (OBJECT_PAGE, lambda w: reverse("admin:trial_case_screen",
                                                      args=[w.case.pk])),
    "image list": (LIST_PAGE, lambda w: reverse("admin:trial_image_changelist")),
    "image page": (OBJECT_PAGE, lambda w: reverse("admin:trial_image_change",
                                                  args=[w.image.pk])),
    "import job list": (LIST_PAGE, lambda w: reverse("admin:trial_importjob_changelist")),
    "import job page": (OBJECT_PAGE, lambda w: reverse("admin:trial_importjob_change",
                                                       args=[w.job.pk])),
    "assignment list": (LIST_PAGE, lambda w: reverse("admin:trial_assignment_changelist")),
    "assignment page": (OBJECT_PAGE, lambda w: reverse("admin:trial_assignment_change",
                                                       args=[w.assignment.pk])),
    "audit list": (LIST_PAGE, lambda w: reverse("admin:trial_auditevent_changelist")),
    "audit page": (OBJECT_PAGE, lambda w: reverse("admin:trial_auditevent_change",
                                                  args=[w.event.pk])),
    "randomisation list list": (LIST_PAGE,
                                lambda w: reverse("admin:trial_randomizationlist_changelist")),
    "randomisation list page": (OBJECT_PAGE, lambda w: reverse(
        "admin:trial_randomizationlist_change", args=[w.rlist.pk])),
    "model endpoint list": (LIST_PAGE,
                            lambda w: reverse("admin:drafting_modelendpoint_changelist")),
    "model endpoint page": (OBJECT_PAGE, lambda w: reverse("admin:drafting_modelendpoint_change",
                                                           args=[w.endpoint.pk])),
    "model endpoint add": (LIST_PAGE, lambda w: reverse("admin:drafting_modelendpoint_add")),
    "draft list": (LIST_PAGE, lambda w: reverse("admin:drafting_draft_changelist")),
    "draft page": (OBJECT_PAGE, lambda w: reverse("admin:drafting_draft_change",
                                                  args=[w.draft.pk])),
}

# POST-only tools of the trial page: allowed ones redirect back to the trial page (302).
TOOLS = ["generate_list", "allocate_all", "assign", "queue_drafts"]
TOOL_POST = {"anonymous": ANON, "reader": DENIED, "senior": DENIED, "rater": DENIED,
             "statistician": DENIED, "coordinator": 302, "other_coordinator": DENIED,
             "superuser": 302}



@pytest.fixture
def world(db) -> World:
    return build_world(staff_roles=True)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_admin_page_access(world: World, page: str, role: str) -> None:
    expected, url = PAGES[page]
    response = world.client(role).get(url(world))
    assert response.status_code == expected[role], (page, role)
    if response.status_code == ANON:
        assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("page", [p for p in PAGES if "list" in p and "page" not in p])
def test_another_trials_coordinator_sees_empty_lists(world: World, page: str) -> None:
    _, url = PAGES[page]
    html = world.client("other_coordinator").get(url(world)).content.decode()
    for needle in ("Trial A", "A-0001", "reader-a"):
        assert needle not in html, (page, needle)


@pytest.mark.parametrize(("role", "sees_app"), [
    ("reader", False), ("statistician", False), ("coordinator", True),
    ("other_coordinator", True), ("superuser", True),
])
def test_admin_index_shows_the_trial_app_only_to_coordinators(
    world: World, role: str, sees_app: bool
) -> None:
    response = world.client(role).get(reverse("admin:index"))
    assert response.status_code == 200
    assert (reverse("admin:trial_case_changelist") in response.content.decode()) is sees_app


def test_a_non_staff_reader_is_sent_to_the_login_page(db) -> None:
    world = build_world(staff_roles=False)
    response = world.client("reader").get(reverse("admin:trial_case_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("tool", TOOLS)
def test_trial_tool_post_access(world: World, tool: str, role: str) -> None:
    url = reverse(f"admin:trial_trial_{tool}", args=[world.trial.pk])
    response = world.client(role).post(url)
    assert response.status_code == TOOL_POST[role], (tool, role)
    if TOOL_POST[role] == 302 and role != "anonymous":
        assert response["Location"] == reverse("admin:trial_trial_change", args=[world.trial.pk])


@pytest.mark.parametrize("tool", TOOLS)
def test_trial_tools_refuse_get(world: World, tool: str) -> None:
    url = reverse(f"admin:trial_trial_{tool}", args=[world.trial.pk])
    assert world.client("coordinator").get(url).status_code == 405


@pytest.mark.parametrize("role", ROLES)
def test_membership_add_post_access(world: World, role: str) -> None:
    """Adding a person: only to a coordinated trial (the trial choice is scoped)."""
    from trial.models import Membership

    data = {"trial": world.trial.pk, "user": world.users["rater"].pk, "role": "senior",
            "site": world.site.pk, "years_experience": 3}
    response = world.client(role).post(reverse("admin:trial_membership_add"), data)
    created = Membership.objects.filter(user=world.users["rater"], role="senior").exists()
    allowed = role in ("coordinator", "superuser")
    assert created is allowed, role
    if role == "other_coordinator":  # form shown again: trial A is not a valid choice
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
