"""What a rater is sent: their worklist of a campaign and one item, nothing more.

Built here only (the API and the pages send the same): the image, the history fields named
one by one, the reference where an instrument needs it, the report(s) as "Report" or "Report
A"/"Report B" in the blinded text, and the instruments. No case id, source, arm, reader or
model.
"""

from __future__ import annotations

from django.urls import reverse

from reader.payloads import case_payload
from trial.models import Membership

from . import instruments as inst
from .models import Campaign
from .queries import rater_items
from .ratings import reports_shown

# The only case fields a rater gets, named one by one: a field added for readers (an accession
# number, say) must not reach raters by default.
RATER_CASE_FIELDS = ("age", "sex", "chief_complaint", "history", "lab_results",
                     "prior_imaging", "images")


def worklist_payload(rater: Membership, campaign: Campaign) -> dict:
    items = [{"code": ri.code, "position": ri.position,
              "status": "submitted" if hasattr(ri, "rating") else "new"}
             for ri in rater_items(rater, campaign)]
    done = sum(i["status"] == "submitted" for i in items)
    upcoming = next((i["code"] for i in items if i["status"] != "submitted"), None)
    return {"campaign": campaign.pk, "status": campaign.status, "done": done,
            "total": len(items), "next": upcoming, "items": items}


def rating_payload(rater_item) -> dict:
    """What a rater is sent for one item: the image, the history, the reference where an
    instrument needs it, the report(s) as "Report" or "Report A"/"Report B" (blinded text),
    and the instruments with their levels. No case id, source, arm, reader or model."""
    item = rater_item.item
    campaign = rater_item.campaign
    specs = [inst.instrument(c, radpeer_variant=campaign.radpeer_variant)
             for c in item.instruments]
    reports = reports_shown(rater_item)
    labels = ["Report"] if len(reports) == 1 else ["Report A", "Report B"]
    case = {name: value for name, value in case_payload(item.case).items()
            if name in RATER_CASE_FIELDS}
    rating = getattr(rater_item, "rating", None)
    item_args = [campaign.trial.slug, campaign.pk, rater_item.code]
    payload = {
        "code": rater_item.code,
        "position": rater_item.position,
        "case": case,
        "reports": [{"label": label, "findings": r.shown_findings,
                     "impression": r.shown_impression} for label, r in zip(labels, reports,
                                                                           strict=True)],
        "instruments": [
            {"code": s.code, "name": s.name, "question": s.question, "pair": s.pair,
             "levels": [{"code": lv.code, "label": lv.label, "text": lv.text}
                        for lv in s.levels],
             **({"error_types": [{"code": c, "label": t} for c, t in inst.ERROR_TYPES]}
                if s.code == inst.ERRORS else {})}
            for s in specs],
        "status": "submitted" if rating else "new",
        "values": rating.values if rating else None,
        "may_revise": bool(campaign.allow_revision),
        "urls": {name: reverse(f"rater-item-{name}", args=item_args)
                 for name in ("open", "submit")},
        "page": reverse("rating:rate-item", args=item_args),
    }
    if any(s.needs_reference for s in specs):
        payload["reference"] = {"findings": item.reference_findings,
                                "impression": item.reference_impression}
    return payload
