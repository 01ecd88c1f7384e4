"""The world of the reading-workspace permission table (no tests here; see ``test_access``).

Trial A ("trial-a") has four cases with real (synthetic) DICOM images and demo AI drafts,
each read by the AI-arm reader and the SCP reader at fixed worklist positions::

    case  AI reader (position)        SCP reader (position)   senior
    A     submitted (1)               submitted (4)           review open (version 0)
    B     submitted (2)               submitted (3)           ready, not opened
    C     submitted (3)               open (2)                not ready (one reading in)
    D     open, from its draft (4)    not opened (1)          not ready (nothing in)

So a reader's position N is never the other reader's case N. Besides them: an unallocated
reader with no assignment, the senior of the cases' site and a senior of another site of
trial A, a rater, a statistician, trial A's coordinator, the coordinator of trial B (a
stranger to trial A), a superuser. Everyone but the coordinators is staff too, so the admin
refuses them for their role and not for lacking ``is_staff``.

The texts are marked so a leak is a plain substring: the AI reader's reports say ``Kestrel``,
the SCP reader's ``Plover``, every AI draft ``Draftmark``; the arms are labelled
``Armlabel-Alpha`` / ``Armlabel-Beta``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.test import Client

from drafting.models import Draft
from reader import reading as rd
from reader import review as review_svc
from reader.models import Amendment, Reading, ReadingEvent, Review
from tests.support.factories import (
    PASSWORD,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from tests.support.read_world import build_read_world
from trial.models import Arm, AuditEvent, Case, Image, Membership, Role, Trial

SLUG = "trial-a"
ROLES = ("anonymous", "ai_reader", "scp_reader", "idle_reader", "senior", "senior_elsewhere",
         "rater", "statistician", "coordinator", "other_coordinator", "superuser")
CASES = ("A", "B", "C", "D")
POSITIONS = {"ai_reader": {"A": 1, "B": 2, "C": 3, "D": 4},
             "scp_reader": {"D": 1, "C": 2, "B": 3, "A": 4}}
USERNAMES = {"ai_reader": "reader-kx-ai", "scp_reader": "reader-kx-scp",
             "idle_reader": "reader-kx-idle", "senior": "senior-a1",
             "senior_elsewhere": "senior-a2", "rater": "rater-a", "statistician": "stat-a",
             "coordinator": "coordinator-a", "other_coordinator": "coordinator-b",
             "superuser": "root"}
MARK = {"ai_reader": "Kestrel", "scp_reader": "Plover"}
DRAFT_MARK = "Draftmark"
ARM_LABELS = ("Armlabel-Alpha", "Armlabel-Beta")


def report(role: str, case: str) -> dict[str, str]:
    return {"findings": f"{MARK[role]} findings of case {case}.",
            "impression": f"{MARK[role]} impression {case}."}


@dataclass
class AccessWorld:
    trial: Trial
    other: Trial
    users: dict[str, object]
    members: dict[str, Membership]
    cases: dict[str, Case]  # "A".."D"
    images: dict[str, Image]  # the (only) image of each case
    readings: dict[tuple[str, str], Reading]  # (reader role, case)
    review: Review  # of case A, by the senior

    def client(self, role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(self.users[role])
        return client

    def ids(self) -> dict[str, int]:
        """The placeholders of the table's URLs: ``{A}`` a case, ``{img_A}`` its image,
        ``{reading_A}`` the AI reader's reading of A, ``{review_A}`` the review of A."""
        out: dict[str, int] = {}
        for name, case in self.cases.items():
            out[name] = case.pk
            out[f"img_{name}"] = self.images[name].pk
        out["reading_A"] = self.readings[("ai_reader", "A")].pk
        out["review_A"] = self.review.pk
        return out


def snapshot() -> dict[str, list[dict]]:
    """Every row the reading workspace writes, field by field (to prove a refusal wrote none)."""
    return {model.__name__: list(model.objects.order_by("pk").values())
            for model in (Reading, ReadingEvent, Amendment, Review, AuditEvent)}


def _set_positions(reader: Membership, by_case: dict[str, Case], positions: dict[str, int]):
    """Give the reader's assignments the table's positions (a fixed outcome of the shuffle)."""
    for assignment in reader.assignments.all():  # out of the way of the unique constraint
        assignment.position += 100
        assignment.save(update_fields=["position"])
    for name, position in positions.items():
        reader.assignments.filter(case=by_case[name]).update(position=position)


def build_access_world(folder: Path) -> AccessWorld:
    base = build_read_world(folder, cases=4, slug=SLUG, name="Trial A",
                            ai_assisted_label=ARM_LABELS[0], scp_label=ARM_LABELS[1])
    trial = base.trial
    site = base.senior.site
    members: dict[str, Membership] = {
        "ai_reader": base.readers[Arm.AI_ASSISTED], "scp_reader": base.readers[Arm.SCP],
        "senior": base.senior,
        "coordinator": Membership.objects.get(trial=trial, role=Role.COORDINATOR),
    }
    members["idle_reader"] = MembershipFactory(trial=trial, role=Role.READER, site=site,
                                               user=UserFactory(username=USERNAMES["idle_reader"]))
    members["senior_elsewhere"] = MembershipFactory(
        trial=trial, role=Role.SENIOR, site=SiteFactory(trial=trial, code="A2"),
        user=UserFactory(username=USERNAMES["senior_elsewhere"]))
    for role, code in (("rater", Role.RATER), ("statistician", Role.STATISTICIAN)):
        members[role] = MembershipFactory(trial=trial, role=code, site=site,
                                          user=UserFactory(username=USERNAMES[role]))
    users = {role: m.user for role, m in members.items()}
    for role, user in users.items():
        user.username, user.is_staff = USERNAMES[role], True
        user.save(update_fields=["username", "is_staff"])
    other = TrialFactory(slug="trial-b", name="Trial B")
    users["other_coordinator"] = UserFactory(username=USERNAMES["other_coordinator"],
                                             is_staff=True)
    MembershipFactory(trial=other, user=users["other_coordinator"], role=Role.COORDINATOR,
                      site=SiteFactory(trial=other, code="B1"))
    users["superuser"] = get_user_model().objects.create_superuser(
        USERNAMES["superuser"], "root@example.org", PASSWORD)

    cases = dict(zip(CASES, base.cases, strict=True))
    for role in ("ai_reader", "scp_reader"):
        _set_positions(members[role], cases, POSITIONS[role])
    for name, case in cases.items():
        Draft.objects.filter(case=case).update(
            findings=f"{DRAFT_MARK} findings of {name}: right lower zone opacity.",
            impression=f"{DRAFT_MARK} impression of {name}: pneumonia.")

    readings: dict[tuple[str, str], Reading] = {}

    def read(role: str, name: str, *, submit: bool) -> None:
        assignment = members[role].assignments.get(case=cases[name])
        reading = rd.open_reading(assignment, user=users[role])
        if submit:
            reading = rd.submit(reading, version=reading.version, user=users[role],
                                **report(role, name))
        readings[(role, name)] = reading

    for name in ("A", "B"):
        read("ai_reader", name, submit=True)
        read("scp_reader", name, submit=True)
    read("ai_reader", "C", submit=True)
    read("scp_reader", "C", submit=False)
    read("ai_reader", "D", submit=False)
    review = review_svc.open_review(cases["A"], senior=members["senior"])
    images = {name: case.images.get() for name, case in cases.items()}
    return AccessWorld(trial=trial, other=other, users=users, members=members, cases=cases,
                       images=images, readings=readings, review=review)
