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
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from trial import audit
from trial.models import Arm, Case

from . import instruments as inst
from .models import Reading, Review
from .rating_models import Campaign, Item, RatedReport, RaterItem, Rating
from .reading import Locked, ReadingError

AI_ALONE = "ai_alone"

# Lines that sign a report or say who or what wrote it: removed whole from what raters see.
SIGNATURE_LINE = re.compile(
    r"^\s*(?:electronically\s+)?(?:signed|dictated|reported|read|verified|approved|"
    r"transcribed|finali[sz]ed|authored|prepared)(?:\s+\w+)?\s+by\b"
    r"|^\s*(?:radiologist|reporter|author|attending|resident|signature|signed)\s*:"
    r"|^\s*(?:dr\.?|prof\.?)\s+[A-Z][\w.-]+(?:\s+[A-Z][\w.-]+)*,?\s*(?:md|mbbs|frcr)?\.?\s*$"
    r"|^\s*(?:generated|drafted|written|produced)\s+(?:by|with)\b"
    r"|^\s*(?:model|engine|model version|version)\s*:",
    re.IGNORECASE,
)
# Markers inside a line: only the marker goes, the finding on the same line stays.
INLINE_MARKER = re.compile(
    r"\[[^\]]*\b(?:ai|draft|auto(?:mated)?|model|generated)\b[^\]]*\]"
    r"|\(\s*(?:ai|model)[- ](?:generated|draft(?:ed)?|written)\s*\)"
    r"|\bai[- ](?:generated|draft(?:ed)?|assisted|written)\b:?"
    r"|\b(?:large\s+)?(?:language|vision|ai)\s+model\b"
    r"|\b(?:gpt|llm|chatgpt|openai|demo[- ]backend)\b[\w.-]*",
    re.IGNORECASE,
)
LEFTOVER = re.compile(r"^[\s\W_]*$")  # nothing but spaces and punctuation


class CampaignError(ReadingError):
    """The campaign cannot do that now; the message says why."""


def blind_text(text: str, *, names: Iterable[str] = ()) -> tuple[str, list[str]]:
    """``text`` without signature lines, model markers and the given names (model, source,
    reader names); returns (shown text, removed lines) so the coordinator can review them."""
    named = [n for n in {n.strip() for n in names} if len(n) >= 3]
    name_re = (re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in sorted(
        named, key=len, reverse=True)) + r")(?!\w)", re.IGNORECASE) if named else None)
    kept, removed = [], []
    for line in text.splitlines():
        # A line naming a model, source or person is about authorship: it goes whole.
        if SIGNATURE_LINE.search(line) or (name_re is not None and name_re.search(line)):
            if line.strip():
                removed.append(line.strip())
            continue
        cleaned = INLINE_MARKER.sub("", line)
        if cleaned != line:
            removed.append(line.strip())
            if LEFTOVER.match(cleaned):
                continue
            cleaned = re.sub(r"\s{2,}", " ", cleaned).strip()
        kept.append(cleaned.rstrip())
    return "\n".join(kept).strip(), removed


def _names(campaign: Campaign) -> set[str]:
    """What could name a source: model names, endpoint names, imported source names, readers."""
    trial = campaign.trial
    names = set(campaign.reports.exclude(source__in=[Arm.AI_ASSISTED, Arm.SCP, AI_ALONE,
                                                      RatedReport.PUBLISHED])
                .values_list("source", flat=True))
    for endpoint in trial.model_endpoints.all():
        names.update({endpoint.name, endpoint.model_name})
    from trial.models import Draft

    names.update(Draft.objects.filter(case__trial=trial).exclude(model_reported="")
                 .values_list("model_reported", flat=True).distinct())
    for member in trial.memberships.select_related("user"):
        user = member.user
        names.update({user.get_username(), user.get_full_name()})
    return {n for n in names if n}


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
        Campaign.objects.select_for_update().get(pk=campaign.pk)
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
    # Two pairs of one case share a report (AI alone vs SCP, AI-assisted vs SCP): a rater who
    # saw both would learn the arms from the common one. So a case's pairs go to disjoint raters.
    pairs_of_case: dict[int, list[int]] = defaultdict(list)
    for pk, case_id in campaign.items.filter(kind=Item.Kind.PAIR).values_list("pk", "case"):
        pairs_of_case[case_id].append(pk)
    new: dict[int, list[tuple[Item, bool]]] = defaultdict(list)
    for item in campaign.items.order_by("pk"):
        target, blocked = wanted, set()
        siblings = [pk for pk in pairs_of_case.get(item.case_id, []) if pk != item.pk]
        if item.kind == Item.Kind.PAIR and siblings:
            target = min(wanted, max(1, len(raters) // (len(siblings) + 1)))
            blocked = set().union(*(have[pk] for pk in siblings))
        free = [r.pk for r in raters if r.pk not in have[item.pk] and r.pk not in blocked]
        need = max(0, target - len(have[item.pk]))
        if not need or not free:
            continue
        rng.shuffle(free)
        chosen = sorted(free, key=lambda pk: load[pk])[:need]
        already, need = len(have[item.pk]), len(chosen)
        have[item.pk].update(chosen)
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
        raise CampaignError("This campaign is not open for rating.")
    RaterItem.objects.filter(pk=rater_item.pk).update(opened_at=timezone.now())
    rater_item.refresh_from_db()
    return rater_item


def submit(rater_item: RaterItem, values: dict, *, by: Any) -> Rating:
    """Store the rater's answers: every instrument of the item, each valid. A submitted
    rating is final unless the campaign allows revision (then the change is audited)."""
    campaign = rater_item.campaign
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignError("This campaign is not open for rating.")
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
