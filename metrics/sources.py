"""The report texts the metrics compare: which sources, against which reference, per study.

- **Retrospective**, one comparison per retrospective campaign: each source's report (a model's
  output, the draft worker's output) against the case's published report.
- **Prospective**: the AI draft, the AI-assisted reader's and the SCP reader's reports against
  the senior's signed final report; and the two readers' reports against the AI draft (how
  much of the draft survived, per arm; the SCP reader never saw it, so that arm is the
  baseline of chance overlap).

Texts are what raters would be shown (signature lines and model markers removed, as rating
campaigns store them), FINDINGS then IMPRESSION without headings, so a heading is never a
matching n-gram.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drafting.models import Draft
from rating.models import Campaign, RatedReport
from reader.blinding import blind_text
from reader.models import Reading, Review
from trial.models import Arm, Case, Trial

AI_DRAFT = "ai_draft"
FINAL = "final_report"
SOURCE_NAMES = {AI_DRAFT: "AI draft", Arm.AI_ASSISTED.value: "AI-assisted reader",
                Arm.SCP.value: "SCP reader", RatedReport.PUBLISHED: "Published report",
                FINAL: "Senior's final report"}


def report_text(findings: str, impression: str) -> str:
    """One report as the metrics read it: FINDINGS then IMPRESSION, no headings."""
    return "\n".join(part.strip() for part in (findings, impression) if part and part.strip())


def _shown(findings: str, impression: str) -> str:
    return report_text(blind_text(findings)[0], blind_text(impression)[0])


@dataclass
class Comparison:
    """Sources' reports of cases against one reference report per case."""

    key: str
    title: str
    study: str  # "retrospective" | "prospective"
    reference: str  # the reference's source name
    references: dict[int, str] = field(default_factory=dict)  # case pk -> text
    sources: dict[str, dict[int, str]] = field(default_factory=dict)  # name -> case pk -> text
    case_ids: dict[int, str] = field(default_factory=dict)  # case pk -> case_id

    def texts(self) -> list[str]:
        """Every text of the comparison (references first), for labelling."""
        return [*self.references.values(),
                *(text for texts in self.sources.values() for text in texts.values())]


def retrospective(trial: Trial) -> list[Comparison]:
    found = []
    for campaign in Campaign.objects.filter(trial=trial, kind=Campaign.Kind.RETROSPECTIVE
                                            ).order_by("pk"):
        comparison = Comparison(key=f"campaign-{campaign.pk}", title=campaign.name,
                                study="retrospective", reference=RatedReport.PUBLISHED)
        rows = RatedReport.objects.filter(campaign=campaign).values_list(
            "case_id", "case__case_id", "source", "shown_findings", "shown_impression")
        for case, case_id, source, findings, impression in rows.iterator(chunk_size=5000):
            text = report_text(findings, impression)
            comparison.case_ids[case] = case_id
            if source == RatedReport.PUBLISHED:
                comparison.references[case] = text
            else:
                comparison.sources.setdefault(source, {})[case] = text
        if comparison.references and comparison.sources:
            found.append(comparison)
    return found


def prospective(trial: Trial) -> list[Comparison]:
    final = Comparison(key="prospective-final", title="Prospective: against the final report",
                       study="prospective", reference=FINAL)
    survival = Comparison(key="prospective-draft",
                          title="Prospective: readers' reports against the AI draft",
                          study="prospective", reference=AI_DRAFT)
    for review in Review.objects.filter(case__trial=trial, status=Review.Status.SIGNED
                                        ).select_related("case"):
        final.references[review.case_id] = _shown(review.findings, review.impression)
        final.case_ids[review.case_id] = survival.case_ids[review.case_id] = review.case.case_id
    readings = Reading.objects.filter(assignment__case__trial=trial,
                                      status=Reading.Status.SUBMITTED).select_related(
        "assignment__case", "draft")
    drafts: dict[int, Draft] = {}
    for reading in readings:
        case = reading.assignment.case
        text = _shown(reading.findings, reading.impression)
        survival.case_ids.setdefault(case.pk, case.case_id)
        if case.pk in final.references:
            final.sources.setdefault(reading.assignment.arm, {})[case.pk] = text
        survival.sources.setdefault(reading.assignment.arm, {})[case.pk] = text
        if reading.draft is not None and reading.draft.status == Draft.Status.DONE:
            drafts[case.pk] = reading.draft
    # The draft the AI-arm reader started from; cases read without one use their done draft.
    for draft in Draft.objects.filter(case__trial=trial, status=Draft.Status.DONE).exclude(
            case__in=list(drafts)).order_by("case", "-finished_at"):
        drafts.setdefault(draft.case_id, draft)
    for case_pk, draft in drafts.items():
        text = _shown(draft.findings, draft.impression)
        if case_pk in final.references:
            final.sources.setdefault(AI_DRAFT, {})[case_pk] = text
        if any(case_pk in texts for texts in survival.sources.values()):
            survival.references[case_pk] = text
    survival.sources = {arm: {pk: text for pk, text in texts.items()
                              if pk in survival.references}
                        for arm, texts in survival.sources.items()}
    order = [AI_DRAFT, Arm.AI_ASSISTED.value, Arm.SCP.value]
    for comparison in (final, survival):
        comparison.sources = {name: comparison.sources[name] for name in order
                              if comparison.sources.get(name)}
    return [c for c in (final, survival) if c.references and c.sources]


def comparisons(trial: Trial) -> list[Comparison]:
    """Every comparison the trial's data allows (retrospective first)."""
    return retrospective(trial) + prospective(trial)


def case_ids(trial: Trial) -> dict[int, str]:
    return dict(Case.objects.filter(trial=trial).values_list("pk", "case_id"))
