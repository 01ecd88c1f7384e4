"""The statistical analysis plan's life: a draft the statistician edits, signed (password
re-entered) and frozen with its SHA-256; a change after that is a new version with a reason.

Only a trial's statisticians write plans; its coordinators read them. Every save, signature
and refusal is an audit event. A plan signed after the trial was locked (unblinded) says so
wherever it is shown.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from rating.models import Campaign
from trial import audit, signatures
from trial.errors import Conflict, Invalid
from trial.lifecycle import is_locked
from trial.models import Signature, Trial

from .models import OUTCOMES, SUBGROUPS, AnalysisPlan

FIELDS = ("primary_campaign", "primary_outcomes", "secondary_outcomes", "primary_method",
          "alpha", "subgroups", "missing_ratings", "pooled_campaigns", "notes", "reason")


def frozen_plans(trial: Trial) -> list[AnalysisPlan]:
    """The signed versions, newest first."""
    return list(AnalysisPlan.objects.filter(trial=trial, status=AnalysisPlan.Status.FROZEN)
                .select_related("primary_campaign", "frozen_by").order_by("-version"))


def current_plan(trial: Trial) -> AnalysisPlan | None:
    """The plan the analysis runs: the newest signed version (None: no plan yet)."""
    plans = frozen_plans(trial)
    return plans[0] if plans else None


#: Alpha without a signed plan (95% CIs), as ``analysis.summary``.
DEFAULT_ALPHA = 0.05


def plan_alpha(trial: Trial) -> float:
    """The two-sided alpha every CI of the trial's analysis uses: the signed plan's, else
    0.05 (the report metrics run takes it too, so its CIs are at the plan's level)."""
    plan = current_plan(trial)
    return float(plan.alpha) if plan is not None else DEFAULT_ALPHA


def draft_plan(trial: Trial) -> AnalysisPlan | None:
    """The version being written (at most one, newer than every signed one)."""
    return (AnalysisPlan.objects.filter(trial=trial, status=AnalysisPlan.Status.DRAFT)
            .select_related("primary_campaign").order_by("-version").first())


def plan_hash(plan: AnalysisPlan) -> str:
    """SHA-256 over the plan's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(plan.content(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _problems(trial: Trial, data: dict[str, Any]) -> list[str]:
    problems = []
    for key in ("primary_outcomes", "secondary_outcomes"):
        unknown = [o for o in data.get(key, []) if o not in OUTCOMES]
        if unknown:
            problems.append(f"{key.replace('_', ' ')}: unknown outcome(s) {unknown}; choose "
                            f"from {sorted(OUTCOMES)}")
    both = set(data.get("primary_outcomes", [])) & set(data.get("secondary_outcomes", []))
    if both:
        problems.append(f"outcome(s) {sorted(both)} cannot be both primary and secondary")
    unknown = [g for g in data.get("subgroups", []) if g not in SUBGROUPS]
    if unknown:
        problems.append(f"subgroups: unknown {unknown}; choose from {sorted(SUBGROUPS)}")
    if data.get("primary_method") not in AnalysisPlan.Method.values:
        problems.append(f"primary method must be one of {AnalysisPlan.Method.values}")
    if data.get("missing_ratings") not in AnalysisPlan.Missing.values:
        problems.append(f"missing ratings must be one of {AnalysisPlan.Missing.values}")
    alpha = data.get("alpha")
    if not isinstance(alpha, int | float) or not 0.001 <= float(alpha) <= 0.2:
        problems.append("alpha must be a number from 0.001 to 0.2")
    campaign = data.get("primary_campaign")
    if campaign is not None and campaign.trial_id != trial.pk:
        problems.append("the primary campaign belongs to another trial")
    pooled = data.get("pooled_campaigns", [])
    known = set(Campaign.objects.filter(trial=trial, pk__in=pooled).values_list("pk", flat=True))
    if set(pooled) - known:
        problems.append(f"pooled campaigns {sorted(set(pooled) - known)} are not campaigns of "
                        "this trial")
    if campaign is not None and campaign.pk in pooled:
        problems.append("the primary campaign is pooled with itself: list only the others")
    return problems


def save_draft(trial: Trial, data: dict[str, Any], *, by: Any) -> AnalysisPlan:
    """Create or update the draft version with ``data`` (the keys of ``FIELDS``); 400 with
    every problem when the data do not make a plan."""
    problems = _problems(trial, data)
    if problems:
        raise Invalid("The analysis plan was not saved.", problems=problems)
    with transaction.atomic():
        Trial.objects.select_for_update().get(pk=trial.pk)  # one writer of versions at a time
        plan = draft_plan(trial)
        created = plan is None
        if created:
            last = AnalysisPlan.objects.filter(trial=trial).order_by("-version").first()
            plan = AnalysisPlan(trial=trial, version=(last.version + 1) if last else 1,
                                created_by=by)
        before = {} if created else plan.content()
        for key in FIELDS:
            if key in data:
                setattr(plan, key, data[key])
        plan.save()
        audit.record(action="analysis_plan.saved", obj=plan, actor=by, trial=trial,
                     before=before, after=plan.content())
    return plan


def freeze(plan: AnalysisPlan, *, by: Any, password: str | None) -> AnalysisPlan:
    """Sign the draft (``by``'s password, now) and freeze it with its SHA-256.

    Needs a primary campaign and at least one primary outcome; a version after the first
    needs the reason it replaces the previous one."""
    if plan.status != AnalysisPlan.Status.DRAFT:
        raise Conflict("This version of the analysis plan is already signed; edit a new one.")
    problems = []
    if plan.primary_campaign_id is None:
        problems.append("choose the primary rating campaign")
    if not plan.primary_outcomes:
        problems.append("choose at least one primary outcome")
    if plan.version > 1 and not plan.reason.strip():
        problems.append("say why this version replaces the signed one (reason)")
    if problems:
        raise Invalid("The analysis plan cannot be signed yet.", problems=problems)
    meaning = Signature.Meaning.ANALYSIS_PLAN
    signatures.verify(by, password, meaning=meaning, obj=plan, trial=plan.trial)
    with transaction.atomic():
        locked = AnalysisPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status != AnalysisPlan.Status.DRAFT:
            raise Conflict("This version of the analysis plan is already signed.")
        locked.sha256 = plan_hash(locked)
        locked.status = AnalysisPlan.Status.FROZEN
        locked.frozen_at, locked.frozen_by = timezone.now(), by
        locked.after_unblinding = is_locked(locked.trial_id)
        # The one write of a frozen row: through the queryset (save() refuses frozen rows).
        AnalysisPlan.objects.filter(pk=locked.pk).update(
            sha256=locked.sha256, status=locked.status, frozen_at=locked.frozen_at,
            frozen_by=by, after_unblinding=locked.after_unblinding)
        signatures.sign(by, password, meaning=meaning, obj=locked, trial=locked.trial)
        audit.record(action="analysis_plan.frozen", obj=locked, actor=by, trial=locked.trial,
                     after={"version": locked.version, "sha256": locked.sha256,
                            "after_unblinding": locked.after_unblinding,
                            "reason": locked.reason})
    return locked


def start_new_version(trial: Trial, *, by: Any) -> AnalysisPlan:
    """A draft copied from the newest signed version (to change a frozen plan)."""
    if draft_plan(trial) is not None:
        raise Conflict("A new version is already being written.")
    base = current_plan(trial)
    data: dict[str, Any] = {} if base is None else {
        key: getattr(base, key) for key in FIELDS if key != "reason"}
    data.setdefault("primary_method", AnalysisPlan.Method.STUDENT)
    data.setdefault("missing_ratings", AnalysisPlan.Missing.AVAILABLE)
    data.setdefault("alpha", 0.05)
    return save_draft(trial, data, by=by)


def plan_summary(plan: AnalysisPlan | None) -> dict[str, Any] | None:
    """What the analysis needs of the plan (pure data for ``analysis.summary``)."""
    if plan is None:
        return None
    signed = signatures.signature_payload(plan)
    return {**plan.content(), "sha256": plan.sha256,
            "primary_campaign_id": plan.primary_campaign_id,
            "frozen_at": plan.frozen_at.isoformat(timespec="seconds") if plan.frozen_at else None,
            "signed": signed["text"] if signed else None,
            "after_unblinding": plan.after_unblinding}
