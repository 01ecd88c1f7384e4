"""Who may open which rating page, rater API endpoint, campaign API endpoint and campaign admin
page: one table of (role, method, URL, expected status), every role against every URL.

Conventions as in ``tests.reader.test_access``: anonymous gets the login page (302) from pages
and the admin, 403 from the API; someone with no role in the trial 404; a member of another
role 403; a rater reaches only their own items, by code (anyone else's code is 404, as is a
draft campaign). A refusal writes nothing. No response to a rater names a source or an arm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, override_settings
from django.urls import resolve

from rating import build as campaign_build
from rating import urls
from rating.models import Campaign, Item, RatedReport, RaterItem, Rating
from tests.support.campaign_world import SIGNATURE, build_campaign_world
from tests.support.factories import (
    PASSWORD,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from trial.models import AuditEvent, Membership, Role, Trial

ROLES = ("anonymous", "reader", "senior", "owner", "other_rater", "outsider_rater",
         "statistician", "coordinator", "other_coordinator", "superuser")
ARM_LABELS = ("Armlabel-Alpha", "Armlabel-Beta")
SINGLE = {"likert": "4", "radpeer": "5", "acceptability": "A", "errors": {}}


@dataclass
class World:
    slug: str
    users: dict
    ids: dict
    case_ids: list[str]
    reader_names: list[str]

    def client(self, role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(self.users[role])
        return client


def build(folder: Path) -> World:
    from trial.models import Arm

    made = build_campaign_world(folder, cases=1, raters=2)
    trial = made.trial
    trial.ai_assisted_label, trial.scp_label = ARM_LABELS
    trial.save(update_fields=["ai_assisted_label", "scp_label"])
    site = made.read.senior.site
    users = {"reader": made.read.readers[Arm.AI_ASSISTED].user, "senior": made.read.senior.user,
             "owner": made.raters[0].user, "other_rater": made.raters[1].user,
             "coordinator": Membership.objects.get(trial=trial, role=Role.COORDINATOR).user}
    users["outsider_rater"] = MembershipFactory(trial=trial, role=Role.RATER, site=site).user
    users["statistician"] = MembershipFactory(trial=trial, role=Role.STATISTICIAN,
                                              site=site).user
    other = TrialFactory(slug="trial-other")
    users["other_coordinator"] = UserFactory()
    MembershipFactory(trial=other, user=users["other_coordinator"], role=Role.COORDINATOR,
                      site=SiteFactory(trial=other))
    for user in users.values():
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    users["superuser"] = get_user_model().objects.create_superuser(
        "root-rating", "root@example.org", PASSWORD)

    drafted = Campaign.objects.create(trial=trial, name="Draft campaign", instruments=["likert"],
                                      seed=7)
    drafted.raters.set(made.raters)
    campaign_build.build(drafted)
    empty = Campaign.objects.create(trial=trial, name="Empty", instruments=["likert"], seed=8)
    empty.raters.set(made.raters)

    def single_code(campaign: Campaign, rater: Membership) -> str:
        return campaign.rater_items.filter(rater=rater, item__kind=Item.Kind.SINGLE).order_by(
            "position").first().code

    ids = {"slug": trial.slug, "open": made.campaign.pk, "draft": drafted.pk, "empty": empty.pk,
           "code": single_code(made.campaign, made.raters[0]),
           "pair_code": made.campaign.rater_items.get(rater=made.raters[0],
                                                      item__kind=Item.Kind.PAIR).code,
           "other_code": single_code(made.campaign, made.raters[1]),
           "draft_code": single_code(drafted, made.raters[0])}
    readers = [m.user.username for m in made.read.readers.values()]
    return World(slug=trial.slug, users=users, ids=ids,
                 case_ids=[c.case_id for c in made.read.cases], reader_names=readers)


def snapshot() -> dict:
    return {model.__name__: list(model.objects.order_by("pk").values())
            for model in (Campaign, RatedReport, Item, RaterItem, Rating, AuditEvent)}


@dataclass(frozen=True)
class Row:
    role: str
    method: str
    url: str
    body: object
    status: int
    kind: str
    writes: bool | None

    @property
    def id(self) -> str:
        return f"{self.role}-{self.method}-{self.url}"


def default(role: str, kind: str) -> int:
    if role == "anonymous":
        return 403 if kind == "api" else 302
    if role == "other_coordinator" and kind != "admin":
        return 404
    return 403


def rows(method: str, url: str, allowed: dict, *, kind: str = "api",
         body: object = None) -> list[Row]:
    out = []
    for role in ROLES:
        expected = allowed.get(role, default(role, kind))
        status, writes = expected if isinstance(expected, tuple) else (expected, None)
        if status >= 300 and writes is None:  # refusals write nothing (admin redirects may)
            writes = False
        out.append(Row(role, method, url, body, status, kind, writes))
    return out


def raters(owner, other=404, outsider=404) -> dict:
    return {"owner": owner, "other_rater": other, "outsider_rater": outsider}


def coord(status, writes=None) -> dict:
    value = (status, writes) if writes is not None else status
    return {"coordinator": value, "superuser": value}


def coord_stat(status) -> dict:
    return {**coord(status), "statistician": status}


RATE = "/rate/{slug}/{open}/"
ITEMS = "/api/trials/{slug}/rating/{open}/items/"
DRAFT_ITEMS = "/api/trials/{slug}/rating/{draft}/items/"
CAMPAIGNS = "/api/trials/{slug}/campaigns/"
ADMIN = "/admin/rating/campaign/"
NEW = {"name": "New campaign", "kind": "prospective", "instruments": ["likert"]}
CSV_BODY = "multipart-csv"

TABLE: list[Row] = [
    # --- rating pages --------------------------------------------------------------------
    *rows("GET", RATE, raters(200, 200), kind="page"),
    *rows("GET", RATE + "{code}/", raters((200, True)), kind="page"),  # opens the clock
    *rows("GET", RATE + "{other_code}/", raters(404, 200), kind="page"),
    *rows("GET", "/rate/{slug}/{draft}/", raters(404), kind="page"),
    *rows("GET", "/rate/{slug}/{draft}/{draft_code}/", raters(404), kind="page"),
    # --- rater API -----------------------------------------------------------------------
    *rows("GET", ITEMS, raters(200, 200)),
    *rows("GET", ITEMS + "{code}/", raters(200)),
    *rows("GET", ITEMS + "{pair_code}/", raters(200)),
    *rows("GET", ITEMS + "{other_code}/", raters(404, 200)),
    *rows("POST", ITEMS + "{code}/open/", raters((200, True))),
    *rows("POST", ITEMS + "{code}/submit/", raters((200, True)), body={"values": SINGLE}),
    *rows("POST", ITEMS + "{code}/submit/", raters(400), body={"values": {"likert": "4"}}),
    *rows("POST", ITEMS + "{other_code}/submit/", raters(404, 200), body={"values": SINGLE}),
    *rows("GET", DRAFT_ITEMS, raters(404)),
    *rows("GET", DRAFT_ITEMS + "{draft_code}/", raters(404)),
    *rows("POST", DRAFT_ITEMS + "{draft_code}/open/", raters(404)),
    *rows("POST", DRAFT_ITEMS + "{draft_code}/submit/", raters(404), body={"values": SINGLE}),
    # --- campaign API ----------------------------------------------------------------------
    *rows("GET", CAMPAIGNS, coord_stat(200)),
    *rows("POST", CAMPAIGNS, coord(201, True), body=NEW),
    *rows("GET", CAMPAIGNS + "{open}/", coord_stat(200)),
    *rows("PATCH", CAMPAIGNS + "{open}/", coord(200, True), body={"name": "Renamed"}),
    *rows("PATCH", CAMPAIGNS + "{open}/", coord(409), body={"instruments": ["likert"]}),
    *rows("PATCH", CAMPAIGNS + "{empty}/", coord(200, True), body={"instruments": ["radpeer"]}),
    *rows("DELETE", CAMPAIGNS + "{open}/", coord(409)),
    *rows("DELETE", CAMPAIGNS + "{empty}/", coord(204, True)),
    *rows("POST", CAMPAIGNS + "{open}/build/", coord(409)),  # nothing new to build
    *rows("POST", CAMPAIGNS + "{empty}/build/", coord(200, True)),
    *rows("POST", CAMPAIGNS + "{draft}/open/", coord(200, True)),
    *rows("POST", CAMPAIGNS + "{empty}/open/", coord(409)),  # nothing to rate
    *rows("POST", CAMPAIGNS + "{open}/close/", coord(200, True)),
    *rows("POST", CAMPAIGNS + "{draft}/close/", coord(409)),
    *rows("GET", CAMPAIGNS + "{open}/reports/", coord(200)),
    *rows("POST", CAMPAIGNS + "{open}/reports/", coord(400), body=CSV_BODY),  # prospective
    *rows("GET", CAMPAIGNS + "{open}/key/", coord_stat(409)),  # revealed at the final lock
    # --- admin -------------------------------------------------------------------------------
    *rows("GET", ADMIN, {**coord(200), "other_coordinator": 200}, kind="admin"),
    *rows("GET", ADMIN + "add/", {**coord(200), "other_coordinator": 200}, kind="admin"),
    *rows("GET", ADMIN + "{open}/change/", coord(200), kind="admin"),
    *rows("POST", ADMIN + "{empty}/build/", coord(302, True), kind="admin"),
    *rows("POST", ADMIN + "{draft}/open/", coord(302, True), kind="admin"),
    *rows("POST", ADMIN + "{open}/close/", coord(302, True), kind="admin"),
    *rows("GET", ADMIN + "{open}/import-reports/", coord(200), kind="admin"),
    *rows("GET", "/admin/rating/rateritem/", {**coord(200), "other_coordinator": 200},
          kind="admin"),
]

RATER_ROLES = ("owner", "other_rater", "outsider_rater")


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("rating-media")
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media,
                                                        PASSWORD_HASHERS=fast):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build(tmp_path_factory.mktemp("rating-source")), media
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def world(shared, db, settings) -> World:
    settings.MEDIA_ROOT = shared[1]
    return shared[0]


def call(world: World, role: str, method: str, url: str, body: object = None):
    client = world.client(role)
    if method == "GET":
        return client.get(url)
    if body == CSV_BODY:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("r.csv", b"case_id,source,findings,impression\n",
                                    content_type="text/csv")
        return client.post(url, {"file": upload})
    if body is None:
        return getattr(client, method.lower())(url)
    return getattr(client, method.lower())(url, json.dumps(body),
                                           content_type="application/json")


def forbidden_for_raters(world: World) -> list[str]:
    """Sources, arms, signatures and readers. (Not the case id: the world's report texts
    quote it, and the texts are what raters rate.)"""
    return ["ai_assisted", '"scp"', "ai_alone", "published", *ARM_LABELS, "Quillfeather",
            *world.reader_names]


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_access(world: World, row: Row) -> None:
    url = row.url.format(**world.ids)
    before = snapshot()
    response = call(world, row.role, row.method, url, row.body)
    body = response.content.decode(errors="replace")
    assert response.status_code == row.status, (row.id, body[:300])
    if row.writes is not None:
        assert (snapshot() != before) is row.writes, "wrote" if not row.writes else "no write"
    if row.role in RATER_ROLES:
        leaks = [word for word in forbidden_for_raters(world) if word in body]
        assert not leaks, (row.id, leaks)
    if row.status == 302 and row.role == "anonymous":
        assert response["Location"].startswith(
            "/admin/login/" if row.kind == "admin" else "/accounts/login/")


def test_the_table_covers_every_rating_and_campaign_route() -> None:
    from rating.api import urls as api_urls

    named = {p.name for p in api_urls.urlpatterns
             if p.name and (p.name.startswith("rater-") or p.name.startswith("trial-campaign"))}
    named |= {f"rating:{p.name}" for p in urls.urlpatterns if p.name in ("rate", "rate-item")}
    dummy = {"slug": "s", "open": 1, "draft": 2, "empty": 3, "code": "C", "pair_code": "P",
             "other_code": "O", "draft_code": "D"}
    covered = {resolve(row.url.format(**dummy)).view_name for row in TABLE}
    assert named <= covered, named - covered
    for role in ROLES:
        assert {r.url for r in TABLE if r.role == role} == {r.url for r in TABLE}


def test_the_forbidden_words_are_really_there_for_the_coordinator(world: World) -> None:
    """Positive control: the unblinded key (after the lock) and the report review do name the
    sources."""
    Trial.objects.filter(slug=world.slug).update(status=Trial.Status.LOCKED)
    key = call(world, "coordinator", "GET",
               CAMPAIGNS.format(**world.ids) + f"{world.ids['open']}/key/").json()
    assert {row["report_source"] for row in key} >= {"ai_assisted", "scp"}
    assert {row["case_id"] for row in key} == set(world.case_ids)
    reports = call(world, "coordinator", "GET",
                   CAMPAIGNS.format(**world.ids) + f"{world.ids['open']}/reports/").json()
    assert any(SIGNATURE in r["findings"] and SIGNATURE in r["stripped"] for r in reports)
    assert all(SIGNATURE not in r["shown_findings"] for r in reports)
    page = call(world, "coordinator", "GET", ADMIN + f"{world.ids['open']}/change/")
    html = page.content.decode()
    assert "Quillfeather" in html and "Review blinding" in html and "submitted" in html


def test_a_refused_upload_lists_its_problems(world: World) -> None:
    response = call(world, "coordinator", "POST",
                    CAMPAIGNS.format(**world.ids) + f"{world.ids['open']}/reports/", CSV_BODY)
    assert response.status_code == 400
    assert response.json()["problems"] == [
        "reports are imported into retrospective campaigns only"]


def test_the_key_is_revealed_only_after_the_lock_and_each_reveal_is_audited(world: World) -> None:
    """Hole 1 of the security audit: the unblinded key is shown only once the trial is
    finally locked, and every look at it (API or admin) is an audit event with who and when."""
    url = CAMPAIGNS.format(**world.ids) + f"{world.ids['open']}/key/"
    before = call(world, "statistician", "GET", url)
    assert before.status_code == 409 and "locked" in before.json()["detail"]
    admin_page = call(world, "coordinator", "GET", "/admin/rating/rateritem/").content.decode()
    assert "ai_assisted" not in admin_page and "0 unblinded" not in admin_page
    assert not AuditEvent.objects.filter(action="campaign.key_viewed").exists()
    Trial.objects.filter(slug=world.slug).update(status=Trial.Status.LOCKED)
    assert call(world, "statistician", "GET", url).status_code == 200
    assert "ai_assisted" in call(world, "coordinator", "GET",
                                 "/admin/rating/rateritem/").content.decode()
    viewers = AuditEvent.objects.filter(action="campaign.key_viewed").values_list(
        "actor__username", flat=True)
    assert set(viewers) == {world.users["statistician"].username,
                            world.users["coordinator"].username}
