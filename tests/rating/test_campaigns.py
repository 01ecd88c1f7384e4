"""Rating campaigns, the services: building items (prospective and retrospective), blinding the
texts, randomising each rater's order and each pair's sides, and taking ratings."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import pytest

from rating import build, errors, ratings
from rating import instruments as inst
from rating.models import Campaign, Item, RatedReport, RaterItem, Rating
from rating.report_import import import_reports
from reader.blinding import blind_text
from reader.reading import Locked
from tests.support.campaign_world import (
    AI_TEXT,
    SCP_TEXT,
    SIGNATURE,
    build_campaign_world,
    read_and_sign,
)
from tests.support.factories import (
    CaseFactory,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from tests.support.read_world import build_read_world
from trial.models import Arm, AuditEvent, Role

pytestmark = pytest.mark.django_db

SINGLE_VALUES = {"likert": "4", "radpeer": "5", "acceptability": "B",
                 "errors": {"false_finding": {"significant": 1, "insignificant": 0}}}


# --- prospective build ---------------------------------------------------------------------------

def test_prospective_build_makes_an_item_per_junior_report_and_a_pair_per_case(tmp_path):
    world = build_campaign_world(tmp_path, cases=2, raters=3, open_=False)
    campaign = world.campaign
    items = list(campaign.items.select_related("report", "other", "case"))
    assert len(items) == 6  # per case: AI-assisted, SCP, and the pair
    for case in {i.case for i in items}:
        mine = [i for i in items if i.case == case]
        singles = sorted(i.report.source for i in mine if i.kind == Item.Kind.SINGLE)
        pairs = [(i.report.source, i.other.source) for i in mine if i.kind == Item.Kind.PAIR]
        assert singles == [Arm.AI_ASSISTED, Arm.SCP]
        assert pairs == [(Arm.AI_ASSISTED, Arm.SCP)]
    single = next(i for i in items if i.kind == Item.Kind.SINGLE)
    assert single.instruments == list(inst.SINGLE)
    assert single.reference_impression == "Right lower lobe pneumonia."
    pair = next(i for i in items if i.kind == Item.Kind.PAIR)
    assert pair.instruments == [inst.PREFERENCE]  # no model-written report in the pair
    # every rater gets every item once
    assert campaign.rater_items.count() == 6 * 3
    assert not campaign.reports.filter(source=build.AI_ALONE).exists()


def test_prospective_build_adds_the_ai_draft_alone_when_asked(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=2, open_=False,
                                 include_ai_alone=True)
    items = list(world.campaign.items.select_related("report", "other"))
    assert sorted(i.report.source for i in items if i.kind == Item.Kind.SINGLE) == sorted([
        Arm.AI_ASSISTED, build.AI_ALONE, Arm.SCP])
    pairs = {(i.report.source, i.other.source): i.instruments
             for i in items if i.kind == Item.Kind.PAIR}
    assert pairs == {(Arm.AI_ASSISTED, Arm.SCP): [inst.PREFERENCE],
                     (build.AI_ALONE, Arm.SCP): [inst.PREFERENCE, inst.SOURCE_ID]}
    alone = world.campaign.reports.get(source=build.AI_ALONE)
    assert alone.draft_id is not None and alone.reading_id is None


def test_only_cases_with_both_readings_and_a_signed_reference_are_built(tmp_path):
    world = build_read_world(tmp_path, cases=3)
    read_and_sign(world, 0)
    campaign = Campaign.objects.create(trial=world.trial, name="c", instruments=["likert"],
                                       seed=1)
    campaign.raters.set([MembershipFactory(trial=world.trial, role=Role.RATER)])
    assert build.build(campaign) == 2  # the signed case's two junior reports
    signed = world.assignment(Arm.AI_ASSISTED, 0).case
    assert set(campaign.items.values_list("case", flat=True)) == {signed.pk}


def test_build_without_instruments_or_raters_is_refused(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=1, open_=False)
    empty = Campaign.objects.create(trial=world.trial, name="none", instruments=[])
    with pytest.raises(errors.CampaignError, match="instrument"):
        build.build(empty)
    no_raters = Campaign.objects.create(trial=world.trial, name="noraters",
                                        instruments=["likert"])
    with pytest.raises(errors.CampaignError, match="raters"):
        build.build(no_raters)
    assert not no_raters.items.exists()  # atomic: the items went with the refusal


def test_a_second_build_adds_nothing_then_only_new_cases(tmp_path):
    world = build_read_world(tmp_path, cases=3)
    read_and_sign(world, 0)
    read_and_sign(world, 1)
    campaign = Campaign.objects.create(trial=world.trial, name="c", instruments=list(inst.ALL),
                                       seed=5)
    raters = [MembershipFactory(trial=world.trial, role=Role.RATER) for _ in range(2)]
    campaign.raters.set(raters)
    assert build.build(campaign) == 6
    first = {ri.pk: (ri.code, ri.position, ri.swapped) for ri in campaign.rater_items.all()}
    with pytest.raises(errors.CampaignError, match="No case is ready"):
        build.build(campaign)
    assert campaign.items.count() == 6 and campaign.rater_items.count() == 12
    read_and_sign(world, 2)
    assert build.build(campaign) == 3
    assert campaign.items.count() == 9 and campaign.rater_items.count() == 18
    # what was given before is untouched; the new items follow each rater's old ones
    assert {ri.pk: (ri.code, ri.position, ri.swapped)
            for ri in campaign.rater_items.filter(pk__in=first)} == first
    for rater in raters:
        positions = sorted(campaign.rater_items.filter(rater=rater)
                           .values_list("position", flat=True))
        assert positions == list(range(1, 10))
    assert AuditEvent.objects.filter(action="campaign.built").count() == 2


# --- retrospective -------------------------------------------------------------------------------

def retro_world(cases: int, raters: int, *, seed: int = 99, name: str = "Retro",
                instruments: tuple[str, ...] = (inst.PREFERENCE,), trial=None,
                **fields) -> Campaign:
    """A retrospective campaign over plain cases: one ``published`` and one ``modelx`` report
    per case (so one pair item per case with the pair instruments)."""
    if trial is None:
        trial = TrialFactory()
        site = SiteFactory(trial=trial)
        for n in range(cases):
            CaseFactory(trial=trial, site=site, case_id=f"R{n:03d}")
        for n in range(raters):
            MembershipFactory(trial=trial, role=Role.RATER, site=site,
                              user=UserFactory(username=f"retro-rater{n:02d}"))
    campaign = Campaign.objects.create(trial=trial, name=name, kind=Campaign.Kind.RETROSPECTIVE,
                                       instruments=list(instruments), seed=seed, **fields)
    campaign.raters.set(trial.memberships.filter(role=Role.RATER))
    lines = ["case_id,source,findings,impression"]
    for case in trial.cases.order_by("case_id"):
        lines.append(f"{case.case_id},published,Published findings {case.case_id},Normal.")
        lines.append(f"{case.case_id},modelx,Modelx findings {case.case_id},Normal.")
    import_reports(campaign, "\n".join(lines).encode())
    build.build(campaign)
    return campaign


def test_retrospective_build_pairs_each_source_with_the_published_report():
    campaign = retro_world(2, 2, instruments=tuple(inst.ALL))
    items = list(campaign.items.select_related("report", "other"))
    singles = [i for i in items if i.kind == Item.Kind.SINGLE]
    pairs = [i for i in items if i.kind == Item.Kind.PAIR]
    assert [i.report.source for i in singles] == ["modelx", "modelx"]  # not the reference
    assert {(i.report.source, i.other.source) for i in pairs} == {("modelx", "published")}
    assert pairs[0].instruments == [inst.PREFERENCE, inst.SOURCE_ID]
    assert singles[0].reference_findings.startswith("Published findings")


# --- blinding ------------------------------------------------------------------------------------

def test_blind_text_strips_signatures_markers_and_names_but_keeps_content():
    text = ("Right lower zone consolidation.\n"
            "Electronically signed by Dr. Quillfeather\n"
            "Small left effusion. [Draft v2]\n"
            "Generated by GPT-4 vision model\n"
            "Radiologist: J. Smith\n"
            "Dr. Ann Other, MD\n"
            "Reviewed with Kestrelnet output\n"
            "No pneumothorax.")
    shown, removed = blind_text(text, names=["Kestrelnet", "ab"])
    assert shown == ("Right lower zone consolidation.\nSmall left effusion.\nNo pneumothorax.")
    assert removed == ["Electronically signed by Dr. Quillfeather", "Small left effusion. "
                       "[Draft v2]", "Generated by GPT-4 vision model",
                       "Radiologist: J. Smith", "Dr. Ann Other, MD",
                       "Reviewed with Kestrelnet output"]
    assert blind_text("Clear lungs.\nNormal heart size.") == (
        "Clear lungs.\nNormal heart size.", [])


def test_a_bracketed_ai_marker_is_cut_but_the_lines_content_kept():
    shown, removed = blind_text("Small left effusion. [AI draft v2]")
    assert shown == "Small left effusion."


def test_built_reports_keep_the_original_and_show_the_stripped_text(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=1, open_=False)
    report = world.campaign.reports.get(source=Arm.AI_ASSISTED)
    assert SIGNATURE in report.findings and AI_TEXT in report.findings
    assert SIGNATURE not in report.shown_findings and AI_TEXT in report.shown_findings
    assert report.stripped == [SIGNATURE]
    scp = world.campaign.reports.get(source=Arm.SCP)
    assert SCP_TEXT in scp.shown_findings


# --- randomisation -------------------------------------------------------------------------------

def assignment_of(campaign: Campaign) -> dict[tuple[str, str], tuple[int, bool]]:
    """(rater, item's case) -> (position, swapped): comparable across campaigns."""
    return {(ri.rater.user.username, ri.item.case.case_id): (ri.position, ri.swapped)
            for ri in campaign.rater_items.select_related("rater__user", "item__case")}


def test_orders_and_sides_are_balanced_over_many_raters():
    raters, cases = 40, 30
    campaign = retro_world(cases, raters)
    rows = list(campaign.rater_items.select_related("item"))
    assert len(rows) == raters * cases
    by_rater, by_item = defaultdict(list), defaultdict(list)
    for ri in rows:
        assert ri.item.kind == Item.Kind.PAIR
        by_rater[ri.rater_id].append(ri)
        by_item[ri.item_id].append(ri)
    for mine in by_rater.values():  # each rater's positions are a permutation of 1..n
        assert sorted(ri.position for ri in mine) == list(range(1, cases + 1))
        share = sum(ri.swapped for ri in mine) / len(mine)
        assert 0.2 <= share <= 0.8, share
    for theirs in by_item.values():  # each pair's sides split evenly across its raters
        swapped = sum(ri.swapped for ri in theirs)
        assert abs(swapped - (len(theirs) - swapped)) <= 1
        mean = statistics.mean(ri.position for ri in theirs)
        # sd of the mean here is ~1.37 (uniform 1..30 over 40 raters); over 30 items 4.7 sd
        # keeps a false alarm near 1e-4 per run (3.6 sd failed about 1% of runs).
        assert abs(mean - (cases + 1) / 2) <= 6.5, mean
    # orders really differ between raters (not one shared shuffle)
    orders = {tuple(ri.item_id for ri in sorted(mine, key=lambda r: r.position))
              for mine in by_rater.values()}
    assert len(orders) == raters


def test_the_same_seed_gives_the_same_assignment_and_another_seed_another():
    first = retro_world(12, 6, seed=2024, name="First")
    same = retro_world(0, 0, seed=2024, name="Same", trial=first.trial)
    other = retro_world(0, 0, seed=2025, name="Other", trial=first.trial)
    assert assignment_of(first) == assignment_of(same)
    assert assignment_of(first) != assignment_of(other)
    # the codes are opaque: never shared between campaigns
    assert not set(first.rater_items.values_list("code", flat=True)) & set(
        same.rater_items.values_list("code", flat=True))


def test_raters_per_item_gives_each_item_that_many_raters_with_even_loads():
    campaign = retro_world(30, 7, raters_per_item=3)
    per_item = Counter(campaign.rater_items.values_list("item", flat=True))
    assert set(per_item.values()) == {3} and len(per_item) == 30
    loads = Counter(campaign.rater_items.values_list("rater", flat=True))
    assert len(loads) == 7 and max(loads.values()) - min(loads.values()) <= 1
    for item_id in per_item:
        sides = list(campaign.rater_items.filter(item_id=item_id)
                     .values_list("swapped", flat=True))
        assert abs(sum(sides) - (len(sides) - sum(sides))) <= 1


# --- ratings -------------------------------------------------------------------------------------

def single_item(campaign: Campaign, rater) -> RaterItem:
    return (campaign.rater_items.filter(rater=rater, item__kind=Item.Kind.SINGLE)
            .select_related("item", "campaign").order_by("position").first())


@pytest.mark.parametrize(("values", "message"), [
    ({k: v for k, v in SINGLE_VALUES.items() if k != "likert"}, "missing likert"),
    ({**SINGLE_VALUES, "preference": "A"}, "not asked: preference"),
    ({**SINGLE_VALUES, "likert": "6"}, "choose one of"),
    ({**SINGLE_VALUES, "acceptability": "E"}, "choose one of"),
    ({**SINGLE_VALUES, "radpeer": "2a"}, "choose one of"),  # ACR level, reference variant
    ({**SINGLE_VALUES, "errors": {"false_finding": {"significant": -1}}}, "0-50"),
    ({**SINGLE_VALUES, "errors": {"made_up": {}}}, "unknown type"),
    ("likert=4", "by instrument"),
])
def test_submit_validates_every_value(tmp_path, values, message):
    world = build_campaign_world(tmp_path, cases=1, raters=1)
    rater_item = single_item(world.campaign, world.raters[0])
    with pytest.raises(errors.CampaignError, match=message):
        ratings.submit(rater_item, values, by=None)
    assert not Rating.objects.exists()


def test_a_submitted_rating_is_final_unless_revision_is_allowed(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=1)
    rater_item = single_item(world.campaign, world.raters[0])
    ratings.open_item(rater_item)
    rating = ratings.submit(rater_item, SINGLE_VALUES, by=world.raters[0].user)
    assert rating.values["likert"] == "4" and rating.seconds > 0  # opened before
    assert rating.values["errors"]["omitted_finding"] == {"significant": 0, "insignificant": 0}
    with pytest.raises(Locked):
        ratings.submit(rater_item, {**SINGLE_VALUES, "likert": "2"}, by=world.raters[0].user)
    rating.refresh_from_db()
    assert rating.values["likert"] == "4" and rating.revisions == 0
    assert AuditEvent.objects.filter(action="rating.submitted").count() == 1


def test_revision_is_kept_in_the_audit_log(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=1, allow_revision=True)
    rater_item = single_item(world.campaign, world.raters[0])
    user = world.raters[0].user
    ratings.submit(rater_item, SINGLE_VALUES, by=user)
    rating = ratings.submit(rater_item, {**SINGLE_VALUES, "likert": "2"}, by=user)
    assert rating.values["likert"] == "2" and rating.revisions == 1
    event = AuditEvent.objects.get(action="rating.revised")
    assert event.before["values"]["likert"] == "4"
    assert event.after["values"]["likert"] == "2" and event.after["revision"] == 1
    assert event.actor == user


def test_pair_values_are_a_or_b(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=1)
    pair = world.campaign.rater_items.get(item__kind=Item.Kind.PAIR)
    with pytest.raises(errors.CampaignError, match="choose one of A, B"):
        ratings.submit(pair, {"preference": "left"}, by=None)
    assert ratings.submit(pair, {"preference": " B "}, by=None).values == {"preference": "B"}


def test_draft_and_closed_campaigns_refuse_ratings(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=1, open_=False)
    rater_item = single_item(world.campaign, world.raters[0])
    with pytest.raises(errors.CampaignError, match="not open"):
        ratings.open_item(rater_item)
    with pytest.raises(errors.CampaignError, match="not open"):
        ratings.submit(rater_item, SINGLE_VALUES, by=None)
    Campaign.objects.filter(pk=world.campaign.pk).update(status=Campaign.Status.CLOSED)
    rater_item = RaterItem.objects.select_related("campaign", "item").get(pk=rater_item.pk)
    with pytest.raises(errors.CampaignError, match="not open"):
        ratings.submit(rater_item, SINGLE_VALUES, by=None)
    assert not Rating.objects.exists()


def test_a_rating_that_arrives_after_closing_is_a_conflict(tmp_path):
    """The rater's page still shows the item; the campaign closed meanwhile: 409, not 400,
    and nothing stored (the status is read again under the campaign's row lock)."""
    from rest_framework.test import APIClient

    world = build_campaign_world(tmp_path, cases=1, raters=1)
    rater_item = single_item(world.campaign, world.raters[0])
    ratings.open_item(rater_item)
    Campaign.objects.filter(pk=world.campaign.pk).update(status=Campaign.Status.CLOSED)
    client = APIClient()
    client.force_authenticate(world.raters[0].user)
    url = (f"/api/trials/{world.trial.slug}/rating/{world.campaign.pk}/items/"
           f"{rater_item.code}/submit/")
    with pytest.raises(errors.NotOpen):  # its campaign was read (open) before it closed
        ratings.submit(rater_item, SINGLE_VALUES, by=None)
    response = client.post(url, {"values": SINGLE_VALUES}, format="json")
    assert response.status_code == 409, response.content
    assert not Rating.objects.exists()


def test_the_radpeer_variant_decides_the_levels(tmp_path):
    world = build_campaign_world(tmp_path, cases=1, raters=1, instruments=(inst.RADPEER,),
                                 radpeer_variant=inst.RADPEER_ACR2016)
    rater_item = single_item(world.campaign, world.raters[0])
    with pytest.raises(errors.CampaignError):
        ratings.submit(rater_item, {"radpeer": "5"}, by=None)
    assert ratings.submit(rater_item, {"radpeer": "2b"}, by=None).values == {"radpeer": "2b"}


def test_rated_report_sources_are_the_campaigns_own(tmp_path):
    build_campaign_world(tmp_path, cases=1, raters=1, open_=False)
    assert set(RatedReport.objects.values_list("source", flat=True)) == {
        Arm.AI_ASSISTED, Arm.SCP}


def test_no_rater_sees_one_report_in_two_pairs(tmp_path):
    """(AI-assisted, SCP) and (AI alone, SCP) share the SCP report: a rater given both pairs
    would learn the arms from it, so a case's pairs go to disjoint raters, split evenly."""
    world = build_campaign_world(tmp_path, cases=3, raters=5, include_ai_alone=True,
                                 instruments=("preference", "source_id"))
    for rater in world.raters:
        shown = [report.pk for ri in RaterItem.objects.filter(rater=rater)
                 .select_related("item__report", "item__other")
                 for report in (ri.item.report, ri.item.other)]
        assert len(shown) == len(set(shown)), shown
    for item in world.campaign.items.all():
        assert item.rater_items.count() == 2  # 5 raters // 2 pairs of the case
