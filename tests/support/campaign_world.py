"""A trial ready for rating: cases read by both arms (distinctive texts), signed by a senior,
and a prospective campaign with raters, built and open (no tests here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rating import build
from rating import instruments as inst
from rating.models import Campaign
from reader import reading, review
from tests.support.factories import PASSWORD, MembershipFactory, UserFactory
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, Membership, Role

# Distinctive texts: a leak of a report's source shows up as a plain substring.
AI_TEXT = "Kestrel opacity in the right lower zone"
SCP_TEXT = "Plover opacity in the right lower zone"
SIGNATURE = "Electronically signed by Dr. Quillfeather"


@dataclass
class CampaignWorld:
    read: ReadWorld
    raters: list[Membership]
    campaign: Campaign

    @property
    def trial(self):
        return self.read.trial


def read_and_sign(world: ReadWorld, index: int) -> None:
    """Both readings of the index-th AI-arm case submitted, and the senior's review signed."""
    case = world.assignment(Arm.AI_ASSISTED, index).case
    for arm in (Arm.AI_ASSISTED, Arm.SCP):
        assignment = world.readers[arm].assignments.get(case=case)
        opened = reading.open_reading(assignment, user=None)
        text = AI_TEXT if arm == Arm.AI_ASSISTED else SCP_TEXT
        reading.submit(opened, findings=f"{text} ({case.case_id}).\n{SIGNATURE}",
                       impression="Pneumonia.", version=opened.version)
    opened = review.open_review(case, senior=world.senior)
    review.sign(opened, findings=f"Reference opacity ({case.case_id}).",
                impression="Right lower lobe pneumonia.", version=opened.version,
                by=world.senior.user, password=PASSWORD)


def build_campaign_world(folder: Path, *, cases: int = 2, raters: int = 5,
                         instruments: tuple[str, ...] = inst.ALL, open_: bool = True,
                         **campaign_fields) -> CampaignWorld:
    world = build_read_world(folder, cases=cases)
    for i in range(cases):
        read_and_sign(world, i)
    members = [MembershipFactory(trial=world.trial, role=Role.RATER,
                                 user=UserFactory(username=f"rater{i + 1}"))
               for i in range(raters)]
    campaign = Campaign.objects.create(trial=world.trial, name="Prospective quality",
                                       instruments=list(instruments), seed=12345,
                                       **campaign_fields)
    campaign.raters.set(members)
    build.build(campaign)
    if open_:
        campaign.status = Campaign.Status.OPEN
        campaign.save(update_fields=["status"])
    return CampaignWorld(read=world, raters=members, campaign=campaign)
