"""A campaign's design and life: checking a design (the admin form and the API both ask),
fixing it once items exist, opening and closing, and auditing its raters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from trial import audit
from trial.lifecycle import check_writable
from trial.models import Membership, Role, Trial

from . import instruments as inst
from .errors import CampaignError
from .models import Campaign

# What decides the items, their raters, orders and sides: fixed once the campaign has items.
DESIGN_FIELDS = ("kind", "instruments", "radpeer_variant", "raters_per_item",
                 "include_ai_alone", "seed", "raters")


def trial_raters(trial: Trial):
    """The memberships that may rate in ``trial``'s campaigns."""
    return (Membership.objects.filter(trial=trial, role=Role.RATER)
            .select_related("user").order_by("user__username"))


def canonical_instruments(chosen: Iterable[str]) -> list[str]:
    """The chosen instruments in the protocol's order (how they are stored and shown)."""
    chosen = list(chosen)
    return [code for code in inst.ALL if code in chosen]


def instrument_problem(codes: list[str]) -> str | None:
    """What is wrong with a choice of instruments (None: nothing)."""
    unknown = [c for c in codes if c not in inst.ALL]
    if not codes:
        return "Choose at least one instrument."
    if unknown:
        return f"Unknown instrument(s): {', '.join(unknown)}."
    if len(set(codes)) != len(codes):
        return "Name each instrument once."
    return None


def design_problems(trial: Trial | None, data: dict[str, Any],
                    campaign: Campaign | None = None) -> dict[str, str]:
    """Field -> what is wrong with a campaign design (empty: it is fine).

    ``data`` holds the fields being set (the others are ``campaign``'s): at least one known
    instrument, each once; raters per item at least 1 (or empty: every rater rates every
    item); raters only of the campaign's trial; the name unique within the trial.
    """
    problems: dict[str, str] = {}
    if "instruments" in data:
        problem = instrument_problem(list(data["instruments"] or []))
        if problem:
            problems["instruments"] = problem
    per_item = data.get("raters_per_item")
    if per_item is not None and per_item < 1:
        problems["raters_per_item"] = "At least 1 (or empty: every rater rates every item)."
    if trial is not None and data.get("raters") is not None:
        strangers = [m for m in data["raters"] if m.trial_id != trial.pk or m.role != Role.RATER]
        if strangers:
            problems["raters"] = "Only raters of the campaign's trial: " + ", ".join(
                str(m) for m in strangers)
    name = data.get("name", getattr(campaign, "name", None))
    if trial is not None and name:
        clash = Campaign.objects.filter(trial=trial, name=name)
        if campaign is not None and campaign.pk is not None:
            clash = clash.exclude(pk=campaign.pk)
        if clash.exists():
            problems["name"] = "This trial has a campaign of that name already."
    return problems


def frozen_changes(campaign: Campaign, changes: dict[str, Any]) -> list[str]:
    """Names of design fields ``changes`` would alter although the campaign has items."""
    if campaign.pk is None or not campaign.items.exists():
        return []
    changed = []
    for name in DESIGN_FIELDS:
        if name not in changes:
            continue
        if name == "raters":
            now = set(campaign.raters.values_list("pk", flat=True))
            if {getattr(m, "pk", m) for m in changes[name]} != now:
                changed.append(name)
        elif changes[name] != getattr(campaign, name):
            changed.append(name)
    return changed


def check_not_frozen(campaign: Campaign, changes: dict[str, Any]) -> None:
    """Refuse (409) a change of the design of a campaign that has items."""
    frozen = frozen_changes(campaign, changes)
    if frozen:
        raise CampaignError(f"The campaign has items: {', '.join(frozen)} can no longer "
                            "change.")


def deletable(campaign: Campaign) -> bool:
    """A campaign with items is never deleted: they, and any ratings, are study data."""
    return not campaign.items.exists()


def check_deletable(campaign: Campaign) -> None:
    """Refuse (409) deleting a campaign with items (``deletable``)."""
    if not deletable(campaign):
        raise CampaignError("The campaign has items (and perhaps ratings): close it instead "
                            "of deleting it.")


def set_status(campaign: Campaign, wanted: str, *, by: Any) -> Campaign:
    """Open (from draft or closed, once it has items) or close (from open); audited. Nothing
    opens or closes once the trial is locked."""
    check_writable(campaign.trial_id, "The campaign")
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if wanted == Campaign.Status.OPEN:
            if locked.status == Campaign.Status.OPEN:
                raise CampaignError("The campaign is already open.")
            if not locked.rater_items.exists():
                raise CampaignError("Build the items first: the campaign has nothing to rate.")
        elif wanted == Campaign.Status.CLOSED:
            if locked.status != Campaign.Status.OPEN:
                raise CampaignError("Only an open campaign can be closed.")
        else:
            raise CampaignError(f"Unknown status {wanted!r}.")
        before = locked.status
        locked.status = wanted
        locked.save(update_fields=["status"])
        audit.record(action=f"campaign.{'opened' if wanted == 'open' else 'closed'}",
                     obj=locked, actor=by, trial=locked.trial, before={"status": before},
                     after={"status": wanted})
    return locked


def rater_names(campaign: Campaign) -> list[str]:
    return sorted(campaign.raters.values_list("user__username", flat=True))


def audit_raters(campaign: Campaign, *, by: Any, before: list[str]) -> None:
    """The raters are a many-to-many field, outside the snapshot: audit their changes too."""
    after = rater_names(campaign)
    if after != before:
        audit.record(action="campaign.raters_changed", obj=campaign, actor=by,
                     trial=campaign.trial, before={"raters": before}, after={"raters": after})
