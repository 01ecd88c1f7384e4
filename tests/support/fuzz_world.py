"""The world the schema-driven fuzzer runs in (no tests here; see ``tests/test_api_schema_fuzz``).

``tests.support.access_world`` (trial A with readings in every state, a review open, the
readers of both arms, an idle reader, seniors of two sites, a rater, a statistician, the
coordinators of trial A and of trial B, a superuser), and besides:

* case B's review signed, so a prospective campaign has items: an open campaign with the rater
  (items to open and rate) and a draft campaign without items (to build, open, delete);
* an eligibility criterion, a screened case (to screen, consent, exclude, delete) and an
  enrolled case whose draft failed with the active endpoint (to retry);
* an API token for everyone.

``path_values`` gives, for a path parameter of an operation, the real values worth trying
(the fuzzer mixes them with generated ones, which are mostly 404s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone
from rest_framework.authtoken.models import Token

from drafting.models import Draft, ModelEndpoint
from rating import build as campaign_build
from rating import instruments as inst
from rating.models import Campaign, RaterItem
from reader import review as review_svc
from reader.models import Review
from tests.support.access_world import AccessWorld, build_access_world
from tests.support.factories import PASSWORD, CaseFactory, CriterionFactory
from trial.models import (
    Case,
    EligibilityCriterion,
    Image,
    ImportJob,
    Membership,
    Site,
    Trial,
)

ROLES = ("anonymous", "ai_reader", "scp_reader", "idle_reader", "senior", "senior_elsewhere",
         "rater", "statistician", "coordinator", "other_coordinator", "superuser")

# The model of the ``{id}`` of each collection (by the path segment before it).
COLLECTIONS = {
    "sites": Site, "members": Membership, "criteria": EligibilityCriterion, "cases": Case,
    "images": Image, "import-jobs": ImportJob, "model-endpoints": ModelEndpoint,
    "drafts": Draft, "campaigns": Campaign,
}


@dataclass
class FuzzWorld:
    access: AccessWorld
    campaign: Campaign  # open, with the rater's items
    draft_campaign: Campaign  # no items yet
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def trial(self) -> Trial:
        return self.access.trial

    def headers(self, role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        return {"Authorization": f"Token {self.tokens[role]}"}

    def path_values(self, path: str, name: str) -> list:
        """Real values of the path parameter ``name`` of ``path`` (an OpenAPI path)."""
        trials = [self.trial.slug, self.access.other.slug]
        if name in ("trial_slug", "slug"):
            return trials
        if name == "position":
            return [1, 2, 3, 4]
        if name == "case_pk":
            return sorted(c.pk for c in self.access.cases.values())
        if name == "campaign":
            return [self.campaign.pk, self.draft_campaign.pk]
        if name == "code":
            return list(RaterItem.objects.filter(campaign=self.campaign)
                        .order_by("rater", "position").values_list("code", flat=True)[:4])
        if name == "id":
            segment = re.search(r"/([^/{}]+)/\{id\}/", path)
            if path.startswith("/api/images/"):
                model = Image
            elif segment and segment.group(1) in COLLECTIONS:
                model = COLLECTIONS[segment.group(1)]
            else:
                return []
            return sorted(model.objects.values_list("pk", flat=True))[:6]
        return []


def build_fuzz_world(folder: Path) -> FuzzWorld:
    access = build_access_world(folder)
    trial = access.trial
    coordinator = access.users["coordinator"]
    senior = access.members["senior"]

    review = review_svc.open_review(access.cases["B"], senior=senior)
    review_svc.sign(review, findings="Reference opacity.", impression="Pneumonia.",
                    version=review.version, by=senior.user, password=PASSWORD)
    assert Review.objects.filter(status=Review.Status.SIGNED).count() == 1

    campaign = Campaign.objects.create(trial=trial, name="Prospective quality",
                                       instruments=list(inst.ALL), seed=12345,
                                       created_by=coordinator)
    campaign.raters.set([access.members["rater"]])
    campaign_build.build(campaign)
    campaign.status = Campaign.Status.OPEN
    campaign.save(update_fields=["status"])
    draft_campaign = Campaign.objects.create(trial=trial, name="Second look",
                                             instruments=[inst.ALL[0]], seed=54321,
                                             created_by=coordinator)
    draft_campaign.raters.set([access.members["rater"]])

    site = senior.site
    CriterionFactory(trial=trial, code="suspected_disease", text="Suspected disease")
    CaseFactory(trial=trial, site=site, case_id="A-SCREENED")
    enrolled = CaseFactory(trial=trial, site=site, case_id="A-ENROLLED",
                           status=Case.Status.ENROLLED, enrolled_at=timezone.now())
    endpoint = ModelEndpoint.objects.get(trial=trial, active=True)
    Draft.objects.create(case=enrolled, endpoint=endpoint, fingerprint=endpoint.fingerprint,
                         config=endpoint.config(), backend=endpoint.backend,
                         status=Draft.Status.FAILED, attempts=3, error="Timed out.",
                         queued_at=timezone.now())

    tokens = {role: Token.objects.create(user=user).key for role, user in access.users.items()}
    return FuzzWorld(access=access, campaign=campaign, draft_campaign=draft_campaign,
                     tokens=tokens)
