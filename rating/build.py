"""Building rating campaigns: the rated reports (snapshots, blinded) and the items.

Prospective: every case with both readings submitted and a signed reference gets an item per
junior report (single-report instruments, against the senior's reference) and a pair of the
AI-assisted and SCP reports (preference); optionally the AI draft alone as a third report.
Retrospective: reports imported from CSV (``rating.report_import``) are rated against each
case's published report, and paired with it for preference and source identification.

Items go to raters in ``rating.assignment``, from the campaign's seed (reproducible builds).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from drafting.models import Draft
from reader.blinding import authorship_names, blind_text
from reader.models import Reading, Review
from trial import audit
from trial.lifecycle import check_writable
from trial.models import Arm, Case

from . import instruments as inst
from .assignment import assign_raters
from .errors import CampaignError
from .models import Campaign, Item, RatedReport

AI_ALONE = "ai_alone"


def source_names(campaign: Campaign) -> set[str]:
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
    """Cases with both readings submitted and a signed reference, not yet in the campaign
    (never a withdrawn case)."""
    return (Case.objects.filter(trial=campaign.trial, review__status=Review.Status.SIGNED)
            .exclude(status=Case.Status.WITHDRAWN)
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
    check_writable(campaign.trial_id, "The campaign")
    with transaction.atomic():
        if Campaign.objects.select_for_update().get(pk=campaign.pk).status == \
                Campaign.Status.CLOSED:
            raise CampaignError("The campaign is closed: nothing more can be added to it.")
        names = source_names(campaign)
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
