"""Who may open which page, API endpoint and admin page of the reading workspace: one table of
(role, method, URL, body, expected status), every role against every reader/senior URL.

The world is ``tests.support.access_world`` (see its table of cases A-D). Conventions, as in
``tests/trial``: an anonymous visitor is sent to the login page by a page (302) and refused by
the API (403: session authentication comes first); someone with no role in the trial (trial
B's coordinator) gets 404; a member of another role 403; the right role the service's answer.
A refusal, and a service conflict (4xx), writes nothing: no reading, event, amendment, review
or audit event is created or changed. Every text response is checked for what its receiver
must never see (the blinding rules).

The world is built once for the module (~0.4 s; ~600 rows); every test runs in a savepoint
rolled back after it, so each row starts from the same state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.test import override_settings
from django.urls import resolve

from reader import urls
from reader.api import urls as api_urls
from reader.api import urls_images
from reader.models import Reading, Review
from tests.support.access_world import (
    ARM_LABELS,
    DRAFT_MARK,
    MARK,
    ROLES,
    SLUG,
    USERNAMES,
    AccessWorld,
    build_access_world,
    snapshot,
)
from tests.support.factories import PASSWORD
from trial.dicom import viewer_pixels

WORKLIST = f"/api/trials/{SLUG}/worklist/"
REVIEWS = f"/api/trials/{SLUG}/reviews/"
READ, REVIEW = f"/read/{SLUG}/", f"/review/{SLUG}/"
LOGIN = {"page": "/accounts/login/?next=", "admin": "/admin/login/?next="}

REPORT = {"findings": "Rowtext findings.", "impression": "Rowtext impression.", "version": 0}
AMEND = {"findings": "Rowtext amended.", "impression": "Rowtext.", "reason": "typo",
         "password": PASSWORD}
SIGN = {**REPORT, "password": PASSWORD}
EVENT = {"kind": "heartbeat"}
FINAL = {**REPORT, "started_from": "report1"}


@dataclass(frozen=True)
class Row:
    role: str
    method: str
    url: str  # placeholders: see AccessWorld.ids
    body: dict | None
    status: int
    kind: str  # "page", "api" or "admin": what anonymous gets
    writes: bool | None  # True: must write; False: must write nothing; None: not checked

    @property
    def id(self) -> str:
        return f"{self.role}-{self.method}-{self.url}"


def default(role: str, kind: str) -> int:
    """A role not allowed: anonymous to the login page (302) or 403 (API); a stranger 404."""
    if role == "anonymous":
        return 403 if kind == "api" else 302
    if role == "other_coordinator" and kind != "admin":
        return 404
    return 403


def rows(method: str, url: str, allowed: dict, *, kind: str = "api",
         body: dict | None = None) -> list[Row]:
    """One row per role. ``allowed``: role -> status, or (status, writes) for an allowed
    request whose writing is checked too."""
    out = []
    for role in ROLES:
        expected = allowed.get(role, default(role, kind))
        status, writes = expected if isinstance(expected, tuple) else (expected, None)
        if status >= 300:
            writes = False  # refusals and conflicts write nothing
        out.append(Row(role, method, url, body, status, kind, writes))
    return out


def readers(ai, scp, idle=404) -> dict:
    return {"ai_reader": ai, "scp_reader": scp, "idle_reader": idle}


def seniors(senior, elsewhere=404) -> dict:
    return {"senior": senior, "senior_elsewhere": elsewhere}


def image_access(case: str) -> dict:
    """Assigned readers, the trial's coordinator and superusers; the senior once the case is
    ready for their review (A, B); no one else of the trial (403)."""
    return {"ai_reader": 200, "scp_reader": 200, "coordinator": 200, "superuser": 200,
            "senior": 200 if case in "AB" else 403}


# Positions (tests.support.access_world): AI reader A1 B2 C3 D4; SCP reader D1 C2 B3 A4.
TABLE: list[Row] = [
    # --- pages ---------------------------------------------------------------------------
    *rows("GET", READ, readers(200, 200, 200), kind="page"),
    *rows("GET", f"{READ}1/", readers(200, (200, True)), kind="page"),  # SCP: opens D
    *rows("GET", f"{READ}4/", readers((200, True), 200), kind="page"),  # AI: resumes D
    *rows("GET", f"{READ}5/", readers(404, 404), kind="page"),  # nobody's position
    *rows("GET", REVIEW, seniors(200, 200), kind="page"),
    *rows("GET", f"{REVIEW}{{A}}/", seniors(200), kind="page"),
    *rows("GET", f"{REVIEW}{{B}}/", seniors((200, True)), kind="page"),  # opens the review
    *rows("GET", f"{REVIEW}{{C}}/", seniors(404), kind="page"),  # one reading in
    *rows("GET", f"{REVIEW}{{D}}/", seniors(404), kind="page"),  # none in
    *(r for case in "ABCD"
      for r in rows("GET", f"/images/{{img_{case}}}/", image_access(case), kind="page")),
    # --- reader API ----------------------------------------------------------------------
    *rows("GET", WORKLIST, readers(200, 200, 200)),
    *rows("GET", f"{WORKLIST}1/", readers(200, 200)),
    *rows("GET", f"{WORKLIST}5/", readers(404, 404)),
    *rows("POST", f"{WORKLIST}1/open/", readers((200, False), (200, True))),  # A / D created
    *rows("POST", f"{WORKLIST}4/open/", readers((200, True), (200, False))),  # D resumed / A
    *rows("POST", f"{WORKLIST}2/events/", readers(409, (204, True)), body=EVENT),  # B / C
    *rows("POST", f"{WORKLIST}4/events/", readers((204, True), 409), body=EVENT),  # D / A
    *rows("POST", f"{WORKLIST}2/save/", readers(409, (200, True)), body=REPORT),
    *rows("POST", f"{WORKLIST}4/save/", readers((200, True), 409), body=REPORT),
    *rows("POST", f"{WORKLIST}5/save/", readers(404, 404), body=REPORT),
    *rows("POST", f"{WORKLIST}2/submit/", readers(409, (200, True)), body=REPORT),
    *rows("POST", f"{WORKLIST}4/submit/", readers((200, True), 409), body=REPORT),
    # A: the senior has started its final report, so it is not amended any more / D new
    *rows("POST", f"{WORKLIST}1/amend/", readers(409, 409), body=AMEND),
    *rows("POST", f"{WORKLIST}2/amend/", readers((200, True), 400), body=AMEND),  # B / C open
    # --- senior API ----------------------------------------------------------------------
    *rows("GET", REVIEWS, seniors(200, 200)),
    *rows("GET", f"{REVIEWS}{{A}}/", seniors(200)),
    *rows("GET", f"{REVIEWS}{{B}}/", seniors(409)),  # ready, not opened yet
    *rows("POST", f"{REVIEWS}{{A}}/open/", seniors((200, False))),  # already open
    *rows("POST", f"{REVIEWS}{{B}}/open/", seniors((200, True))),
    *rows("POST", f"{REVIEWS}{{A}}/save/", seniors((200, True)), body=FINAL),
    *rows("POST", f"{REVIEWS}{{B}}/save/", seniors(409), body=FINAL),
    *rows("POST", f"{REVIEWS}{{A}}/sign/", seniors((200, True)), body=SIGN),
    *rows("POST", f"{REVIEWS}{{B}}/sign/", seniors(409), body=SIGN),
    *(r for case in "CD" for r in (  # not both readings in: no such review, for anyone
        *rows("GET", f"{REVIEWS}{{{case}}}/", seniors(404)),
        *rows("POST", f"{REVIEWS}{{{case}}}/open/", seniors(404)),
        *rows("POST", f"{REVIEWS}{{{case}}}/save/", seniors(404), body=FINAL),
        *rows("POST", f"{REVIEWS}{{{case}}}/sign/", seniors(404), body=SIGN),
    )),
    # --- image API -----------------------------------------------------------------------
    *(r for case in "ABCD" for part in ("pixels", "preview", "viewer")
      for r in rows("GET", f"/api/images/{{img_{case}}}/{part}/", image_access(case))),
    # --- admin (read-only, scoped to coordinated trials) ---------------------------------
    *(r for model, pk in (("reading", "{reading_A}"), ("review", "{review_A}")) for r in (
        *rows("GET", f"/admin/reader/{model}/", {"coordinator": 200, "superuser": 200,
                                                 "other_coordinator": 200}, kind="admin"),
        *rows("GET", f"/admin/reader/{model}/{pk}/change/",
              {"coordinator": 200, "superuser": 200}, kind="admin"),
    )),
]

READER_NAMES = [USERNAMES[r] for r in ("ai_reader", "scp_reader", "idle_reader")]
TEXTS = [MARK["ai_reader"], MARK["scp_reader"], DRAFT_MARK]
# What each role must never receive. Seniors see the two reports, never whose or which arm
# (the AI reports here were rewritten by the reader, so no draft text either).
FORBIDDEN: dict[str, list[str]] = {
    "ai_reader": [MARK["scp_reader"]],
    "scp_reader": [MARK["ai_reader"], DRAFT_MARK, "ai_draft"],
    "idle_reader": TEXTS,
    "senior": ["ai_assisted", '"scp"', "edit_distance", *ARM_LABELS, *READER_NAMES, DRAFT_MARK],
    "senior_elsewhere": ["ai_assisted", '"scp"', "edit_distance", *READER_NAMES, *TEXTS],
    "rater": TEXTS, "statistician": TEXTS, "other_coordinator": TEXTS, "anonymous": TEXTS,
    "coordinator": [], "superuser": [],
}


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker, tmp_path_factory):
    """The world, committed to nothing: built in a transaction rolled back after the module."""
    media = tmp_path_factory.mktemp("access-media")
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media,
                                                        PASSWORD_HASHERS=fast), \
            pytest.MonkeyPatch.context() as patch:
        patch.setattr(viewer_pixels, "PREVIEW_MAX_SIDE", 32)  # the 64 x 48 images get previews
        outer = transaction.atomic()
        outer.__enter__()
        try:
            world = build_access_world(tmp_path_factory.mktemp("access-dicom"))
            yield world, world.ids(), media
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def world(shared, db, settings) -> AccessWorld:
    world, _, media = shared
    settings.MEDIA_ROOT = media  # the images were imported there
    return world


@pytest.fixture
def ids(shared) -> dict[str, int]:
    return shared[1]


def call(world: AccessWorld, role: str, method: str, url: str, body: dict | None = None):
    client = world.client(role)
    if method == "GET":
        return client.get(url)
    if body is None:
        return client.post(url)
    return client.post(url, json.dumps(body), content_type="application/json")


def text_of(response) -> str:
    if response.streaming:  # the pixels: binary, and nothing but pixels
        # Consume it: closing it directly would send request_finished and close the database
        # connection of the module's open transaction.
        b"".join(response.streaming_content)
        return ""
    return response.content.decode(errors="replace")


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_access(world: AccessWorld, ids: dict[str, int], row: Row) -> None:
    url = row.url.format(**ids)
    before = snapshot()
    response = call(world, row.role, row.method, url, row.body)
    body = text_of(response)
    assert response.status_code == row.status, (row.id, body[:300])
    if response.status_code == 302:
        assert response["Location"].startswith(LOGIN[row.kind]), response["Location"]
    if row.writes is not None:
        assert (snapshot() != before) is row.writes, "wrote" if not row.writes else "no write"
    leaks = [word for word in FORBIDDEN[row.role] if word in body]
    assert not leaks, (row.id, leaks)


def test_the_table_covers_every_reader_and_senior_route() -> None:
    """Every route of the reading workspace (but home, sign-in and sign-out) has rows; the
    rating and campaign routes have their own table (tests/rating/test_access.py)."""
    rating = ("rater-", "trial-campaign", "rating:rate")
    named = {p.name for p in (*api_urls.urlpatterns, *urls_images.urlpatterns)}
    named |= {f"reader:{p.name}" for p in urls.urlpatterns
              if p.name not in ("home", "login", "logout")}
    named = {n for n in named if not n.startswith(rating)}
    dummy = {name: 1 for name in ("A", "B", "C", "D", "img_A", "img_B", "img_C", "img_D",
                                  "reading_A", "review_A")}
    covered = {resolve(row.url.format(**dummy)).view_name for row in TABLE}
    assert named <= covered, named - covered
    assert {"admin:reader_reading_changelist", "admin:reader_reading_change",
            "admin:reader_review_changelist", "admin:reader_review_change"} <= covered
    for role in ROLES:  # every URL is tried by every role
        assert {r.url for r in TABLE if r.role == role} == {r.url for r in TABLE}


# --- a reader addresses only their own worklist --------------------------------------------

def test_position_1_is_each_readers_own_case(world: AccessWorld, ids: dict[str, int]) -> None:
    for role, case, not_case in (("scp_reader", "D", "A"), ("ai_reader", "A", "D")):
        own, other = world.cases[case], world.cases[not_case]
        html = text_of(call(world, role, "GET", f"{READ}1/"))
        assert f"Case 1 · <strong>{own.case_id}</strong>" in html, role
        assert f"/api/images/{ids[f'img_{case}']}/pixels/" in html
        assert f"/api/images/{ids[f'img_{not_case}']}/pixels/" not in html
        state = call(world, role, "GET", f"{WORKLIST}1/").json()
        assert state["case"]["case_id"] == own.case_id != other.case_id
        assert [i["id"] for i in state["case"]["images"]] == [ids[f"img_{case}"]]


def test_worklists_hold_only_the_readers_assignments(world: AccessWorld) -> None:
    from tests.support.access_world import POSITIONS

    for role in ("ai_reader", "scp_reader"):
        items = call(world, role, "GET", WORKLIST).json()["items"]
        assert {i["position"]: i["case_id"] for i in items} == {
            position: world.cases[case].case_id for case, position in POSITIONS[role].items()}
    idle = call(world, "idle_reader", "GET", WORKLIST).json()
    assert (idle["total"], idle["items"]) == (0, [])
    assert not Reading.objects.filter(assignment__reader=world.members["idle_reader"]).exists()


# --- seniors: their site's cases, once both readings are in --------------------------------

def test_review_lists_hold_the_ready_cases_of_the_seniors_site(world: AccessWorld) -> None:
    ready = [world.cases["A"], world.cases["B"]]
    listed = call(world, "senior", "GET", REVIEWS).json()["items"]
    assert [i["case_id"] for i in listed] == [c.case_id for c in ready]
    assert [i["status"] for i in listed] == ["open", "ready"]
    assert call(world, "senior_elsewhere", "GET", REVIEWS).json() == {
        "done": 0, "total": 0, "items": []}
    html = text_of(call(world, "senior_elsewhere", "GET", REVIEW))
    assert not any(case.case_id in html for case in world.cases.values())


# --- blinding: the forbidden words are really there to be leaked -----------------------------

def test_the_blinding_markers_reach_those_allowed_to_see_them(world: AccessWorld) -> None:
    """Positive controls of FORBIDDEN: the AI reader's draft-started reading carries the draft
    mark; the senior's review shows both readers' reports; the coordinator's admin page shows
    the reader and the arm."""
    ai_page = text_of(call(world, "ai_reader", "GET", f"{READ}4/"))
    assert DRAFT_MARK in ai_page and 'id="ai-banner"' in ai_page
    assert DRAFT_MARK in call(world, "ai_reader", "GET", f"{WORKLIST}4/").json()["ai_draft"][
        "findings"]
    review = text_of(call(world, "senior", "GET", f"{REVIEWS}{world.cases['A'].pk}/"))
    assert MARK["ai_reader"] in review and MARK["scp_reader"] in review
    reading = world.readings[("ai_reader", "A")]
    admin = text_of(call(world, "coordinator", "GET",
                         f"/admin/reader/reading/?q={world.cases['A'].case_id}"))
    assert USERNAMES["ai_reader"] in admin and ARM_LABELS[0] in admin
    assert reading.findings.startswith(MARK["ai_reader"])


def test_the_senior_sees_reports_in_the_stored_order_only(world: AccessWorld) -> None:
    review = Review.objects.get(case=world.cases["A"])
    state = call(world, "senior", "GET", f"{REVIEWS}{world.cases['A'].pk}/").json()
    shown = [r["findings"] for r in state["reports"]]
    assert shown == [Reading.objects.get(pk=pk).findings for pk in review.order]
    assert set(state["reports"][0]) == {"label", "key", "findings", "impression"}


# --- the admin ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["reading", "review"])
def test_another_trials_coordinator_sees_none_of_the_rows(world: AccessWorld, model: str) -> None:
    url = f"/admin/reader/{model}/"
    theirs = text_of(call(world, "other_coordinator", "GET", url))
    ours = text_of(call(world, "coordinator", "GET", url))
    case_a = world.cases["A"].case_id
    assert case_a in ours
    for needle in (case_a, *READER_NAMES, USERNAMES["senior"], "Trial A"):
        assert needle not in theirs, needle


def test_a_non_staff_reader_is_sent_to_the_admin_login(world: AccessWorld) -> None:
    type(world.users["ai_reader"]).objects.filter(pk=world.users["ai_reader"].pk).update(
        is_staff=False)
    response = call(world, "ai_reader", "GET", "/admin/reader/reading/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN["admin"])
