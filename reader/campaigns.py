"""Building rating campaigns, giving items to raters, and taking their ratings.

Prospective: every case with both readings submitted and a signed reference gets an item per
junior report (single-report instruments, against the senior's reference) and a pair of the
AI-assisted and SCP reports (preference); optionally the AI draft alone as a third report.
Retrospective: reports imported from CSV (``reader.report_import``) are rated against each
case's published report, and paired with it for preference and source identification.

Orders and sides come from the campaign's seed, so a build is reproducible; each rater's
order is a random permutation, and each pair's sides are split evenly between its raters.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from trial import audit
from trial.models import Arm, Case

from . import instruments as inst
from .blinding import authorship_names, blind_text
from .models import Reading, Review
from .rating_models import Campaign, Item, RatedReport, RaterItem, Rating
from .reading import Locked, ReadingError

AI_ALONE = "ai_alone"


class CampaignError(ReadingError):
    """The campaign cannot do that now; the message says why."""


class NotOpen(CampaignError, Locked):
    """Ratings are taken only while the campaign is open (a conflict with its state: 409)."""

    def __init__(self) -> None:
        super().__init__("This campaign is not open for rating.")


def _names(campaign: Campaign) -> set[str]:
    """What could name a source: the trial's authorship names and imported source names."""
    return authorship_names(campaign.trial, campaign.reports.exclude(
        source__in=[Arm.AI_ASSISTED, Arm.SCP, AI_ALONE, RatedReport.PUBLISHED])
        .values_list("source", flat=True))


def make_report(campaign: Campaign, case: Case, source: str, findings: str, impression: str,
                *, names: set[str], **links: Any) -> RatedReport:
    shown_f, cut_f = blind_text(findings, names=names)
    shown_i, cut_i = blind_text(impression, names=names)
    return RatedReport.objects.create(
        campaign=campaign, case=case, source=source, findings=findings, impression=impression,
        shown_findings=shown_f, shown_impression=shown_i, stripped=cut_f + cut_i, **links)


def prospective_cases(campaign: Campaign):
    """Cases with both readings submitted and a signed reference, not yet in the campaign."""
    return (Case.objects.filter(trial=campaign.trial, review__status=Review.Status.SIGNED)
            .annotate(done=Count("assignments__reading", filter=Q(
                assignments__reading__status=Reading.Status.SUBMITTED)))
            .filter(done=2).exclude(pk__in=campaign.items.values("case"))
            .select_related("review").order_by("case_id"))


def _items_for(campaign: Campaign, case: Case, reports: dict[str, RatedReport],
               reference: tuple[str, str], pairs: list[tuple[str, str]]) -> list[Item]:
    singles = [c for c in campaign.instruments if c in inst.SINGLE]
    made = []
    if singles:
        for report in reports.values():
            if report.source == RatedReport.PUBLISHED:
                continue
            made.append(Item.objects.create(
                campaign=campaign, case=case, kind=Item.Kind.SINGLE, report=report,
                instruments=singles, reference_findings=reference[0],
                reference_impression=reference[1]))
    for first, second in pairs:
        model_written = {AI_ALONE} | ({first} if campaign.kind == Campaign.Kind.RETROSPECTIVE
                                      else set())
        codes = [c for c in campaign.instruments if c == inst.PREFERENCE or (
            c == inst.SOURCE_ID and (first in model_written or second in model_written))]
        if codes:
            made.append(Item.objects.create(
                campaign=campaign, case=case, kind=Item.Kind.PAIR, report=reports[first],
                other=reports[second], instruments=codes, reference_findings=reference[0],
                reference_impression=reference[1]))
    return made


def build(campaign: Campaign, *, by: Any = None) -> int:
    """Add the items of every eligible case not yet in the campaign; give them to raters.

    Returns the number of items added. Prospective needs signed references; retrospective
    needs imported reports with a ``published`` one per case.
    """
    if not campaign.instruments:
        raise CampaignError("Choose at least one instrument first.")
    with transaction.atomic():
        if Campaign.objects.select_for_update().get(pk=campaign.pk).status == \
                Campaign.Status.CLOSED:
            raise CampaignError("The campaign is closed: nothing more can be added to it.")
        names = _names(campaign)
        made: list[Item] = []
        if campaign.kind == Campaign.Kind.PROSPECTIVE:
            for case in prospective_cases(campaign):
                made += _prospective_case(campaign, case, names)
        else:
            made += _retrospective(campaign, names)
        if not made:
            raise CampaignError("No case is ready: "
                                + ("a case needs both readings submitted and a signed "
                                   "final report." if campaign.kind == Campaign.Kind.PROSPECTIVE
                                   else "import reports with a 'published' one per case."))
        given = assign_raters(campaign)
        audit.record(action="campaign.built", obj=campaign, actor=by, trial=campaign.trial,
                     after={"items_added": len(made), "rater_items_added": given,
                            "seed": campaign.seed})
    return len(made)


def _prospective_case(campaign: Campaign, case: Case, names: set[str]) -> list[Item]:
    readings = {r.assignment.arm: r for r in Reading.objects.filter(
        assignment__case=case, status=Reading.Status.SUBMITTED).select_related("assignment")}
    review = case.review
    reference = (blind_text(review.findings, names=names)[0],
                 blind_text(review.impression, names=names)[0])
    reports = {arm: make_report(campaign, case, arm, r.findings, r.impression, names=names,
                                reading=r) for arm, r in readings.items()}
    pairs = [(Arm.AI_ASSISTED, Arm.SCP)]
    draft = readings[Arm.AI_ASSISTED].draft
    if campaign.include_ai_alone and draft is not None:
        reports[AI_ALONE] = make_report(campaign, case, AI_ALONE, draft.findings,
                                        draft.impression, names=names, draft=draft)
        pairs.append((AI_ALONE, Arm.SCP))
    return _items_for(campaign, case, reports, reference, pairs)


def _worker_drafts(campaign: Campaign, names: set[str]) -> None:
    """Retrospective with ``include_ai_alone``: the draft worker's finished drafts of the cases
    with a published report become sources too, one per endpoint (``model:<endpoint>``)."""
    from trial.models import Draft

    cases = campaign.reports.filter(source=RatedReport.PUBLISHED).values("case")
    have = set(campaign.reports.values_list("case", "source"))
    drafts = (Draft.objects.filter(case__in=cases, status=Draft.Status.DONE)
              .select_related("endpoint", "case").order_by("case", "endpoint", "-finished_at"))
    for draft in drafts:
        source = f"model:{draft.endpoint.name}"[:60]
        if (draft.case_id, source) in have:
            continue
        have.add((draft.case_id, source))
        make_report(campaign, draft.case, source, draft.findings, draft.impression,
                    names=names, draft=draft)


def _retrospective(campaign: Campaign, names: set[str]) -> list[Item]:
    if campaign.include_ai_alone:
        _worker_drafts(campaign, names)
    by_case: dict[int, dict[str, RatedReport]] = defaultdict(dict)
    for report in campaign.reports.select_related("case"):
        by_case[report.case_id][report.source] = report
    done = set(campaign.items.values_list("case", flat=True))
    made = []
    for case_id, reports in sorted(by_case.items()):
        published = reports.get(RatedReport.PUBLISHED)
        if case_id in done or published is None or len(reports) < 2:
            continue
        reference = (published.shown_findings, published.shown_impression)
        pairs = [(source, RatedReport.PUBLISHED) for source in sorted(reports)
                 if source != RatedReport.PUBLISHED]
        made += _items_for(campaign, published.case, reports, reference, pairs)
    return made


def _exclusive_groups(campaign: Campaign) -> tuple[dict[int, tuple[int, str]],
                                                     dict[int, set[str]]]:
    """Items of a case that must go to disjoint raters, as (item -> (case, group), case ->
    groups). Two pairs of a case share a report (AI alone vs SCP and AI-assisted vs SCP; or two
    sources each against the published report): a rater who saw both would know the common
    one's source. In a retrospective campaign the single items show the published report as
    "Reference", so whoever saw them would recognise it in a pair: a case's single items are
    one group, each pair another."""
    candidate: dict[int, tuple[int, str]] = {}
    for pk, case_id, kind in campaign.items.values_list("pk", "case", "kind"):
        if kind == Item.Kind.PAIR:
            candidate[pk] = (case_id, f"pair:{pk}")
        elif campaign.kind == Campaign.Kind.RETROSPECTIVE:
            candidate[pk] = (case_id, f"singles:{case_id}")
    groups_of_case: dict[int, set[str]] = defaultdict(set)
    for case_id, group in candidate.values():
        groups_of_case[case_id].add(group)
    group_of = {pk: cg for pk, cg in candidate.items() if len(groups_of_case[cg[0]]) > 1}
    return group_of, groups_of_case


def assign_raters(campaign: Campaign) -> int:
    """Give items to raters (all, or ``raters_per_item`` of the least loaded), append them to
    each rater's order in a random permutation, and split each pair's sides evenly."""
    raters = list(campaign.raters.order_by("pk"))
    if not raters:
        raise CampaignError("Add raters to the campaign first.")
    rng = random.Random(f"{campaign.seed}:assign:{campaign.rater_items.count()}")
    load = {r.pk: 0 for r in raters}
    for row in campaign.rater_items.values("rater").annotate(n=Count("pk")):
        load[row["rater"]] = row["n"]
    have = defaultdict(set)
    for item_id, rater_id in campaign.rater_items.values_list("item", "rater"):
        have[item_id].add(rater_id)
    wanted = min(campaign.raters_per_item or len(raters), len(raters))
    group_of, groups_of_case = _exclusive_groups(campaign)
    group_raters: dict[str, set[int]] = defaultdict(set)
    for item_id, raters_of_item in have.items():
        if item_id in group_of:
            group_raters[group_of[item_id][1]] |= raters_of_item
    new: dict[int, list[tuple[Item, bool]]] = defaultdict(list)
    for item in campaign.items.order_by("pk"):
        target, blocked, group = wanted, set(), None
        if item.pk in group_of:
            case_id, group = group_of[item.pk]
            others = groups_of_case[case_id] - {group}
            target = min(wanted, max(1, len(raters) // (len(others) + 1)))
            blocked = set().union(*(group_raters[g] for g in others))
        free = [r.pk for r in raters if r.pk not in have[item.pk] and r.pk not in blocked]
        need = max(0, target - len(have[item.pk]))
        if not need or not free:
            continue
        rng.shuffle(free)
        # Within a group (a retrospective case's single items) the same raters take every item.
        chosen = sorted(free, key=lambda pk: (pk not in group_raters[group], load[pk])
                        if group else load[pk])[:need]
        already, need = len(have[item.pk]), len(chosen)
        have[item.pk].update(chosen)
        if group:
            group_raters[group].update(chosen)
        sides = [i % 2 == 1 for i in range(already, already + need)]
        rng.shuffle(sides)
        for rater_id, swapped in zip(chosen, sides, strict=True):
            load[rater_id] += 1
            new[rater_id].append((item, swapped and item.kind == Item.Kind.PAIR))
    count = 0
    for rater_id, entries in new.items():
        start = (campaign.rater_items.filter(rater_id=rater_id)
                 .aggregate(m=Max("position"))["m"] or 0)
        order = random.Random(f"{campaign.seed}:order:{rater_id}:{start}")
        order.shuffle(entries)
        RaterItem.objects.bulk_create([
            RaterItem(campaign=campaign, item=item, rater_id=rater_id, position=start + i,
                      swapped=swapped)
            for i, (item, swapped) in enumerate(entries, 1)])
        count += len(entries)
    return count


# --- rating ----------------------------------------------------------------------------------

def shown_reports(rater_item: RaterItem) -> list[RatedReport]:
    """The item's report(s) in the order this rater sees them (Report A first)."""
    item = rater_item.item
    if item.kind == Item.Kind.SINGLE:
        return [item.report]
    return [item.other, item.report] if rater_item.swapped else [item.report, item.other]


def open_item(rater_item: RaterItem) -> RaterItem:
    """Start (or restart) the clock of this visit to the item."""
    if rater_item.campaign.status != Campaign.Status.OPEN:
        raise NotOpen
    rater_item.opened_at = timezone.now()
    rater_item.save(update_fields=["opened_at"])
    return rater_item


def submit(rater_item: RaterItem, values: dict, *, by: Any) -> Rating:
    """Store the rater's answers: every instrument of the item, each valid. A submitted
    rating is final unless the campaign allows revision (then the change is audited)."""
    campaign = rater_item.campaign
    if campaign.status != Campaign.Status.OPEN:
        raise NotOpen
    codes = rater_item.item.instruments
    if not isinstance(values, dict):
        raise CampaignError("Give the answers by instrument.")
    missing, extra = set(codes) - set(values), set(values) - set(codes)
    if missing or extra:
        raise CampaignError(f"Answer exactly: {', '.join(codes)}"
                            + (f" (missing {', '.join(sorted(missing))})" if missing else "")
                            + (f" (not asked: {', '.join(sorted(extra))})" if extra else ""))
    try:
        clean = {c: inst.validate(c, values[c], radpeer_variant=campaign.radpeer_variant)
                 for c in codes}
    except ValueError as exc:
        raise CampaignError(str(exc)) from exc
    now = timezone.now()
    with transaction.atomic():
        # Closing locks the campaign's row: a rating is either in before it closed, or refused.
        if Campaign.objects.select_for_update(no_key=True).values_list(
                "status", flat=True).get(pk=campaign.pk) != Campaign.Status.OPEN:
            raise NotOpen
        locked = RaterItem.objects.select_for_update().get(pk=rater_item.pk)
        visit = (now - locked.opened_at).total_seconds() if locked.opened_at else 0.0
        locked.seconds += visit
        locked.opened_at = None
        locked.save(update_fields=["seconds", "opened_at"])
        rating = Rating.objects.filter(rater_item=locked).first()
        if rating is None:
            rating = Rating.objects.create(rater_item=locked, values=clean,
                                           seconds=locked.seconds, submitted_at=now)
            audit.record(action="rating.submitted", obj=rating, actor=by, trial=campaign.trial,
                         after={"values": clean, "seconds": rating.seconds})
            return rating
        if not campaign.allow_revision:
            raise Locked("This rating is submitted and the campaign does not allow revision.")
        before = rating.values
        rating.values, rating.seconds, rating.submitted_at = clean, locked.seconds, now
        rating.revisions += 1
        rating.save()
        audit.record(action="rating.revised", obj=rating, actor=by, trial=campaign.trial,
                     before={"values": before}, after={"values": clean,
                                                       "revision": rating.revisions})
        return rating
