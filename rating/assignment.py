"""Giving a campaign's items to raters: who rates what, in which order, on which side.

Orders and sides come from the campaign's seed, so a build is reproducible; each rater's
order is a random permutation, and each pair's sides are split evenly between its raters.
"""

from __future__ import annotations

import random
from collections import defaultdict

from django.db.models import Count, Max

from .errors import CampaignError
from .models import Campaign, Item, RaterItem


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
