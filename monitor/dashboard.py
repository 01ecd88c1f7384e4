"""The trial dashboard's numbers: one read-only function, ``dashboard_data``, for the page and
its JSON.

Who sees it: the trial's coordinators and statisticians (and superusers), who may see arms.
What it never shows: a report text, an AI draft's contents, or a draft's error text (which may
quote the model server's reply): only counts, names of people, sites, campaigns, arms, and
draft failures as categories (``failure_reason``).

Not an audit event: the dashboard shows how work is progressing, never an analysis result.
Counts of cases, readings and reviews per arm are allocation data the coordinator already
sees in the admin (each reader's arm, each assignment's arm); no outcome (reading time,
rating, edit distance, finding) appears here, by arm or otherwise. Viewing the unblinded
analysis (``analysis.views``) stays the audited act.

Fast: every number comes from one of 14 queries, nearly all aggregates (``GROUP BY`` with
conditional counts), whatever the number of cases; Python only arranges the grouped rows
(``benchmarks/dashboard.py`` times it at 10,000 cases).

Definitions (the same as the coordinators' e-mail summary):

* a reading is *overdue* when it has been open for more than ``OVERDUE_READING_HOURS`` hours
  (default 24), counted from its opening;
* a case is *ready* for a senior once both its readings are submitted, and *overdue* when it
  has been ready (since its second submission) for more than ``OVERDUE_REVIEW_DAYS`` days
  (default 3) with no signed final report, opened by a senior or not.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import CharField, Count, FilteredRelation, Q, QuerySet
from django.db.models.functions import Cast, Substr, TruncDate
from django.urls import reverse
from django.utils import timezone

from drafting.models import Draft, ModelEndpoint
from drafting.queries import active_endpoint
from notify.work import overdue_reading_hours, overdue_review_days
from rating.models import Campaign, RaterItem
from reader.models import Reading, Review
from trial.models import Arm, Assignment, Case, Membership, Role, Site, Trial

from . import deliveries, figures

# A period of the enrolment curve is a day while the trial is younger than this, else a week.
DAILY_UP_TO_DAYS = 60
ARMS = tuple(Arm.values)

# Draft failures by category: a draft's error may quote the model server's reply (which may
# echo the prompt or contain the report), so its text is never shown here.
FAILURE_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"HTTP (\d{3}) from the model server"), "HTTP {0} from the model server"),
    (re.compile(r"No reply within"), "No reply from the model server in time"),
    (re.compile(r"Cannot reach "), "Model server unreachable"),
    (re.compile(r"API key", re.I), "API key missing or refused"),
    (re.compile(r"not JSON|not a chat completion|content is not text"),
     "Unusable reply from the model server"),
    (re.compile(r"empty report|headers but no report text"), "Empty report from the model"),
    (re.compile(r"no image to send"), "Case without an image"),
    (re.compile(r"prompt template is invalid"), "Invalid prompt template"),
    (re.compile(r"Cannot prepare the image"), "Image could not be prepared"),
    (re.compile(r"lease ran out|run stopped answering"), "Worker stopped answering"),
)
OTHER_REASON = "Other error (see the draft list in the admin)"


def poll_seconds() -> float:
    """How often the page asks for new numbers (``MONITOR_POLL_SECONDS``, default 15)."""
    return float(getattr(settings, "MONITOR_POLL_SECONDS", 15))


def failure_reason(error: str) -> str:
    """The category of a draft's error (never its text)."""
    gave_up = error.startswith("Gave up after")
    for pattern, label in FAILURE_REASONS:
        found = pattern.search(error or "")
        if found:
            label = label.format(*found.groups())
            return f"{label} (after every retry)" if gave_up else label
    return OTHER_REASON


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _g(value: float) -> str:
    return f"{value:g}"


# --- the aggregate queries -------------------------------------------------------------------

def _people(trial: Trial) -> list[dict[str, Any]]:
    """Readers, seniors and raters, with their site and (readers) allocated arm."""
    return list(
        Membership.objects.filter(trial=trial, role__in=(Role.READER, Role.SENIOR, Role.RATER))
        .values("pk", "role", "user__username", "site_id", "allocation_slot__arm")
        .order_by("role", "user__username", "pk"))


def _with_arms(cases: QuerySet[Case]) -> QuerySet[Case]:
    """``cases`` with each arm's assignment joined as ``arm_<arm>`` (at most one row each:
    one reader per arm per case), so per-case conditions on both arms stay plain joins."""
    return cases.annotate(**{f"arm_{arm}": FilteredRelation(
        "assignments", condition=Q(assignments__arm=arm)) for arm in ARMS})


def _case_counts(trial: Trial) -> dict[int, dict[str, int]]:
    """Per site: cases by status, enrolled cases not given a reader of every arm, and cases
    given one of every arm (the cases a senior will finalise)."""
    assigned = Q(**{f"arm_{arm}__isnull": False for arm in ARMS})
    status = {s: Count("pk", filter=Q(status=s)) for s in Case.Status.values}
    rows = (_with_arms(Case.objects.filter(trial=trial)).values("site_id")
            .annotate(total=Count("pk"), **status,
                      unassigned=Count("pk", filter=Q(status=Case.Status.ENROLLED) & ~assigned),
                      assigned=Count("pk", filter=assigned))
            .order_by())
    return {row.pop("site_id"): row for row in rows}


def _per_day(trial: Trial, field: str) -> list[dict[str, Any]]:
    """Cases per site and calendar day (in ``TIME_ZONE``) of ``field``.

    PostgreSQL truncates in SQL. SQLite's date functions are Python callbacks run once per
    row (a third of a second at 10,000 cases): there the rows are grouped by their UTC hour,
    read from the stored text as it is, and the hours are turned into local days here (a few
    hundred rows, never one per case; exact across daylight-saving changes). In a time zone
    that is not a whole number of hours from UTC, SQLite truncates per row after all.
    """
    cases = Case.objects.filter(trial=trial, **{f"{field}__isnull": False})
    if connection.vendor != "sqlite" or not _whole_hour_zone():
        return list(cases.annotate(day=TruncDate(field)).values("site_id", "day")
                    .annotate(n=Count("pk")).order_by())
    hours = (cases.annotate(hour=Substr(Cast(field, CharField()), 1, 13))
             .values_list("site_id", "hour").annotate(n=Count("pk")).order_by())
    return local_days(hours)


def _whole_hour_zone() -> bool:
    """Is ``TIME_ZONE`` a whole number of hours from UTC, summer and winter (not India's +5:30,
    say)? Then a UTC hour lies within one local day."""
    zone, now = timezone.get_current_timezone(), timezone.now()
    return all((now + timedelta(days=d)).astimezone(zone).utcoffset().total_seconds() % 3600
               == 0 for d in (-183, 0, 183))


def local_days(hours: Iterable[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """(site, UTC hour as "YYYY-MM-DD HH", count) rows summed per site and local day."""
    days: dict[tuple[int, date], int] = defaultdict(int)
    for site_id, hour, n in hours:
        utc = datetime(int(hour[:4]), int(hour[5:7]), int(hour[8:10]), int(hour[11:13]),
                       tzinfo=UTC)
        days[(site_id, timezone.localdate(utc))] += n
    return [{"site_id": site_id, "day": day, "n": n} for (site_id, day), n in days.items()]


def _draft_counts(trial: Trial, endpoint: ModelEndpoint | None
                  ) -> tuple[dict[str, int], dict[str, int]]:
    """Drafts of the endpoint's current configuration for the enrolled cases, by status, and
    the failed ones by reason category."""
    if endpoint is None:
        return {}, {}
    drafts = Draft.objects.filter(case__trial=trial, case__status=Case.Status.ENROLLED,
                                  fingerprint=endpoint.fingerprint)
    by_status = dict(drafts.values_list("status").annotate(n=Count("pk")).order_by())
    if not by_status.get(Draft.Status.FAILED):
        return by_status, {}
    return by_status, failure_counts(drafts.filter(status=Draft.Status.FAILED))


def failure_counts(failed: QuerySet[Draft]) -> dict[str, int]:
    """Failed drafts by reason category, most frequent first (grouped by error in SQL)."""
    reasons: dict[str, int] = defaultdict(int)
    for error, n in failed.values_list("error").annotate(n=Count("pk")).order_by():
        reasons[failure_reason(error)] += n
    return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def _reading_counts(trial: Trial, overdue_before: datetime) -> list[dict[str, Any]]:
    """Per reader and arm: assignments, readings open and submitted, overdue, with a protocol
    deviation."""
    open_ = Q(reading__status=Reading.Status.OPEN)
    return list(
        Assignment.objects.filter(case__trial=trial).values("reader_id", "arm")
        .annotate(assigned=Count("pk"), open=Count("pk", filter=open_),
                  submitted=Count("pk", filter=Q(reading__status=Reading.Status.SUBMITTED)),
                  overdue=Count("pk", filter=open_ & Q(reading__opened_at__lt=overdue_before)),
                  deviations=Count("pk", filter=Q(reading__deviation__gt="")))
        .order_by())


def _waiting_counts(trial: Trial, overdue_before: datetime) -> list[dict[str, Any]]:
    """Cases ready for a senior (both readings submitted) and not signed, per site and senior
    (none: not opened yet), and how many of them have been ready since before
    ``overdue_before`` (both readings submitted before it)."""
    late = Q(**{f"arm_{arm}__reading__submitted_at__lt": overdue_before for arm in ARMS})
    return list(
        _with_arms(Case.objects.filter(trial=trial))
        .filter(**{f"arm_{arm}__reading__status": Reading.Status.SUBMITTED for arm in ARMS})
        .exclude(review__status=Review.Status.SIGNED)
        .values("site_id", "review__senior_id")
        .annotate(waiting=Count("pk"), overdue=Count("pk", filter=late))
        .order_by())


def _signed_counts(trial: Trial) -> dict[int, int]:
    return dict(Review.objects.filter(case__trial=trial, status=Review.Status.SIGNED)
                .values_list("senior_id").annotate(n=Count("pk")).order_by())


def _rating_counts(campaigns: Iterable[int]) -> list[dict[str, Any]]:
    """Per campaign and rater: items given and ratings submitted."""
    return list(RaterItem.objects.filter(campaign_id__in=list(campaigns))
                .values("campaign_id", "rater_id")
                .annotate(given=Count("pk"), submitted=Count("rating")).order_by())


def _deviation_counts(trial: Trial) -> list[dict[str, Any]]:
    return list(Reading.objects.filter(assignment__case__trial=trial, deviation__gt="")
                .values("assignment__arm", "deviation").annotate(n=Count("pk"))
                .order_by("assignment__arm", "-n", "deviation"))


# --- arranging -------------------------------------------------------------------------------

def _table(columns: list[str], rows: list[tuple[str, list[Any]]], empty: str,
           numeric_from: int = 1) -> dict[str, Any]:
    """A table as the page renders it and the script updates it: rows keyed for in-place
    updates; the cells from ``numeric_from`` on are counts (right-aligned)."""
    return {"columns": columns, "rows": [{"key": key, "cells": cells} for key, cells in rows],
            "empty": empty, "numeric_from": numeric_from}


def _periods(first: date, today: date) -> tuple[str, list[date]]:
    """The enrolment curve's periods: days, or weeks (Mondays) for a trial older than
    ``DAILY_UP_TO_DAYS``; from the one before the first case's, so the curve starts at 0."""
    if (today - first).days < DAILY_UP_TO_DAYS:
        start = first - timedelta(days=1)
        return "day", [start + timedelta(days=i) for i in range((today - start).days + 1)]
    start = first - timedelta(days=first.weekday(), weeks=1)
    return "week", [start + timedelta(weeks=i) for i in range((today - start).days // 7 + 1)]


def _period_of(day: date, unit: str) -> date:
    return day if unit == "day" else day - timedelta(days=day.weekday())


def _enrolment(trial: Trial, sites: list[dict[str, Any]], counts: dict[int, dict[str, int]],
               today: date) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The per-site table, the per-period table and the cumulative curve."""
    screened, enrolled = _per_day(trial, "created_at"), _per_day(trial, "enrolled_at")
    days = [row["day"] for row in screened + enrolled]
    site_rows = []
    for site in sites:
        c = counts.get(site["pk"], {})
        site_rows.append((f"site-{site['pk']}", [
            f"{site['code']} – {site['name']}", c.get("total", 0), c.get("screened", 0),
            c.get("excluded", 0), c.get("enrolled", 0), c.get("withdrawn", 0),
            c.get("unassigned", 0)]))
    by_site = _table(["Site", "Screened (all cases)", "Awaiting decision", "Excluded",
                      "Enrolled", "Withdrawn", "Enrolled, not assigned"], site_rows,
                     "No site yet.")
    if not days:
        return (by_site, _table(["Period"], [], "No case yet."),
                {"unit": "day", "svg": figures.enrolment_svg([], [], "day"),
                 "text": "No case has been screened yet."})
    unit, periods = _periods(min(days), max(today, max(days)))
    index = {p: i for i, p in enumerate(periods)}
    per = {kind: defaultdict(lambda: [0] * len(periods)) for kind in ("screened", "enrolled")}
    for kind, rows in (("screened", screened), ("enrolled", enrolled)):
        for row in rows:
            per[kind][row["site_id"]][index[_period_of(row["day"], unit)]] += row["n"]
    series, columns = [], ["Week of" if unit == "week" else "Day"]
    for site in sites:
        columns += [f"{site['code']} screened", f"{site['code']} enrolled"]
        series.append({"label": site["code"],
                       "screened": _cumulative(per["screened"][site["pk"]]),
                       "enrolled": _cumulative(per["enrolled"][site["pk"]])})
    period_rows = []
    for i, period in reversed(list(enumerate(periods))):
        cells: list[Any] = [period.isoformat()]
        for site in sites:
            cells += [per["screened"][site["pk"]][i], per["enrolled"][site["pk"]][i]]
        period_rows.append((f"p-{period.isoformat()}", cells))
    by_period = _table(columns, period_rows, "No case yet.")
    latest = ", ".join(f"{s['label']} {s['enrolled'][-1]} enrolled of {s['screened'][-1]} "
                       "screened" for s in series)
    text = (f"Cumulative enrolment per site by {unit}, from {periods[0]:%d %b %Y} to "
            f"{periods[-1]:%d %b %Y}: {latest} (enrolled: every case enrolled, those "
            "withdrawn since included).")
    curve = {"unit": unit, "svg": figures.enrolment_svg(periods, series, unit), "text": text}
    return by_site, by_period, curve


def _cumulative(values: Iterable[int]) -> list[int]:
    out, total = [], 0
    for value in values:
        total += value
        out.append(total)
    return out


def _admin(name: str, *args: Any, **filters: Any) -> str:
    url = reverse(name, args=args)
    return f"{url}?{urlencode(filters)}" if filters else url


def dashboard_data(trial: Trial, *, now: datetime | None = None, links: bool = True
                   ) -> dict[str, Any]:
    """Everything the dashboard shows, JSON-ready: headline numbers, tables, figures (SVG
    markup and their text alternatives) and next actions. ``links``: give the actions their
    admin links (coordinators: a statistician cannot use the admin)."""
    now = now or timezone.now()
    reading_hours, review_days = overdue_reading_hours(), overdue_review_days()
    reading_cutoff = now - timedelta(hours=reading_hours)
    review_cutoff = now - timedelta(days=review_days)
    label = {arm: trial.arm_label(arm) for arm in ARMS}

    sites = list(Site.objects.filter(trial=trial).values("pk", "code", "name").order_by("code"))
    site_code = {s["pk"]: s["code"] for s in sites}
    people = _people(trial)
    name = {p["pk"]: p["user__username"] for p in people}
    counts = _case_counts(trial)
    cases = {key: sum(c[key] for c in counts.values()) for key in (
        "total", *Case.Status.values, "unassigned", "assigned")}

    endpoint = active_endpoint(trial)
    drafts, reasons = _draft_counts(trial, endpoint)
    draft_n = {s: drafts.get(s, 0) for s in Draft.Status.values}
    draft_n["missing"] = (max(0, cases[Case.Status.ENROLLED] - sum(draft_n.values()))
                          if endpoint else 0)

    # Readings: per reader and arm, readers with no assignment listed too.
    reading_rows = _reading_counts(trial, reading_cutoff)
    by_reader: dict[tuple[int, str | None], dict[str, int]] = {}
    for row in reading_rows:
        by_reader[(row["reader_id"], row["arm"])] = row
    for p in people:
        if p["role"] == Role.READER and not any(k[0] == p["pk"] for k in by_reader):
            by_reader[(p["pk"], p["allocation_slot__arm"])] = {
                "assigned": 0, "open": 0, "submitted": 0, "overdue": 0, "deviations": 0}
    per_arm = {arm: defaultdict(int) for arm in ARMS}
    reader_table = []
    for (reader, arm), row in sorted(by_reader.items(),
                                     key=lambda kv: (kv[0][1] or "~", name.get(kv[0][0], ""))):
        not_opened = row["assigned"] - row["open"] - row["submitted"]
        if arm in per_arm:
            for key in ("assigned", "open", "submitted", "overdue", "deviations"):
                per_arm[arm][key] += row[key]
            per_arm[arm]["not_opened"] += not_opened
        reader_table.append((f"r-{reader}-{arm or 'none'}", [
            name.get(reader, f"#{reader}"), label.get(arm or "", "not allocated"),
            row["assigned"], not_opened, row["open"], row["submitted"],
            row["overdue"], row["deviations"]]))
    readings = {key: sum(per_arm[arm][key] for arm in ARMS)
                for key in ("assigned", "not_opened", "open", "submitted", "overdue",
                            "deviations")}

    # Reviews: waiting per senior (opened) and per site (not opened yet), signed per senior.
    waiting_rows = _waiting_counts(trial, review_cutoff)
    signed = _signed_counts(trial)
    in_review: dict[int, dict[str, int]] = defaultdict(lambda: {"waiting": 0, "overdue": 0})
    unopened: dict[int, dict[str, int]] = defaultdict(lambda: {"waiting": 0, "overdue": 0})
    for row in waiting_rows:
        target = (in_review[row["review__senior_id"]] if row["review__senior_id"]
                  else unopened[row["site_id"]])
        target["waiting"] += row["waiting"]
        target["overdue"] += row["overdue"]
    seniors = [p for p in people if p["role"] == Role.SENIOR]
    senior_table = []
    for s in seniors:
        covers = ([s["site_id"]] if s["site_id"] else list(site_code))
        ready = sum(unopened[site]["waiting"] for site in covers if site in unopened)
        senior_table.append((f"s-{s['pk']}", [
            s["user__username"], site_code.get(s["site_id"], "all sites"), ready,
            in_review[s["pk"]]["waiting"], in_review[s["pk"]]["overdue"],
            signed.get(s["pk"], 0)]))
    covered = {s["site_id"] for s in seniors}
    everywhere = None in covered
    site_wait_table = []
    for site in sites:
        u = unopened.get(site["pk"], {"waiting": 0, "overdue": 0})
        opened = sum(row["waiting"] for row in waiting_rows
                     if row["site_id"] == site["pk"] and row["review__senior_id"])
        n_seniors = sum(1 for s in seniors if s["site_id"] in (None, site["pk"]))
        site_wait_table.append((f"w-{site['pk']}", [
            site["code"], u["waiting"], u["overdue"], opened, n_seniors]))
    reviews = {
        "ready": sum(u["waiting"] for u in unopened.values()),
        "ready_overdue": sum(u["overdue"] for u in unopened.values()),
        "in_review": sum(v["waiting"] for v in in_review.values()),
        "in_review_overdue": sum(v["overdue"] for v in in_review.values()),
        "signed": sum(signed.values()),
    }
    reviews["overdue"] = reviews["ready_overdue"] + reviews["in_review_overdue"]
    reviews["waiting"] = reviews["ready"] + reviews["in_review"]

    # Ratings: per campaign and rater (campaigns not built yet listed too).
    campaigns = list(Campaign.objects.filter(trial=trial).values("pk", "name", "status")
                     .order_by("name", "pk"))
    campaign_by_pk = {c["pk"]: c for c in campaigns}
    status_label = dict(Campaign.Status.choices)
    per_campaign: dict[int, dict[str, int]] = {
        c["pk"]: {"given": 0, "submitted": 0} for c in campaigns}
    rating_table = []
    rating_rows = sorted(_rating_counts(campaign_by_pk), key=lambda r: (
        campaign_by_pk.get(r["campaign_id"], {}).get("name", ""), name.get(r["rater_id"], "")))
    for row in rating_rows:
        campaign = campaign_by_pk.get(row["campaign_id"])
        if campaign is None:
            continue
        per_campaign[campaign["pk"]]["given"] += row["given"]
        per_campaign[campaign["pk"]]["submitted"] += row["submitted"]
        rating_table.append((f"c-{campaign['pk']}-{row['rater_id']}", [
            campaign["name"], status_label.get(campaign["status"], campaign["status"]),
            name.get(row["rater_id"], f"#{row['rater_id']}"), row["given"], row["submitted"],
            row["given"] - row["submitted"]]))
    for c in campaigns:
        if not per_campaign[c["pk"]]["given"]:
            rating_table.append((f"c-{c['pk']}-none", [
                c["name"], status_label.get(c["status"], c["status"]), "no items given yet",
                0, 0, 0]))
    ratings = {"given": sum(v["given"] for v in per_campaign.values()),
               "submitted": sum(v["submitted"] for v in per_campaign.values())}

    deviation_rows = _deviation_counts(trial)
    deviation_table = [(f"d-{row['assignment__arm']}-{i}", [
        label.get(row["assignment__arm"], row["assignment__arm"]), row["deviation"], row["n"]])
        for i, row in enumerate(deviation_rows)]

    # Overdue work, by person (readings) and by senior or site (reviews).
    overdue_table = []
    for key, cells in reader_table:
        if cells[6]:
            overdue_table.append((f"o-{key}", [
                cells[0], f"Reader ({cells[1]})",
                f"readings open more than {_g(reading_hours)} h", cells[6]]))
    for s in seniors:
        n = in_review[s["pk"]]["overdue"]
        if n:
            overdue_table.append((f"o-s-{s['pk']}", [
                s["user__username"], "Senior",
                f"final reports open, case ready more than {_g(review_days)} days", n]))
    for site in sites:
        n = unopened.get(site["pk"], {}).get("overdue", 0)
        if n:
            overdue_table.append((f"o-w-{site['pk']}", [
                f"Site {site['code']}", "No senior yet",
                f"cases ready more than {_g(review_days)} days, not opened", n]))

    by_site, by_period, curve = _enrolment(trial, sites, counts, timezone.localdate(now))
    bars = _completion_bars(label, per_arm, cases, reviews, campaigns, per_campaign)

    numbers = {
        "cases.total": cases["total"],
        "cases.screened": cases[Case.Status.SCREENED],
        "cases.excluded": cases[Case.Status.EXCLUDED],
        "cases.enrolled": cases[Case.Status.ENROLLED],
        "cases.withdrawn": cases[Case.Status.WITHDRAWN],
        "cases.unassigned": cases["unassigned"],
        **{f"drafts.{k}": v for k, v in draft_n.items()},
        **{f"readings.{k}": v for k, v in readings.items()},
        **{f"readings.{arm}.{k}": per_arm[arm][k] for arm in ARMS
           for k in ("assigned", "not_opened", "open", "submitted", "overdue")},
        **{f"reviews.{k}": v for k, v in reviews.items()},
        **{f"ratings.{k}": v for k, v in ratings.items()},
        "ratings.outstanding": ratings["given"] - ratings["submitted"],
    }
    arm_table = [(f"a-{arm}", [label[arm], per_arm[arm]["assigned"], per_arm[arm]["not_opened"],
                               per_arm[arm]["open"], per_arm[arm]["submitted"],
                               per_arm[arm]["overdue"], per_arm[arm]["deviations"]])
                 for arm in ARMS]
    draft_table = [(f"f-{i}", [reason, n]) for i, (reason, n) in enumerate(reasons.items())]
    numbers["deliveries.failed"], delivery_table = deliveries.failed_rows(trial)

    return {
        "trial": {"slug": trial.slug, "name": trial.name, "status": trial.get_status_display()},
        "generated_at": timezone.localtime(now).isoformat(timespec="seconds"),
        "generated_label": f"{timezone.localtime(now):%d %b %Y, %H:%M:%S}",
        "limits": {"reading_hours": reading_hours, "review_days": review_days},
        "endpoint": {"name": endpoint.name} if endpoint else None,
        "numbers": numbers,
        "tables": {
            "sites": by_site,
            "periods": by_period,
            "failures": _table(["Reason", "Drafts"], draft_table, "No failed draft."),
            "readers": _table(["Reader", "Arm", "Assigned", "Not opened", "Open", "Submitted",
                               "Overdue", "Deviations"], reader_table, "No reader yet.", 2),
            "arms": _table(["Arm", "Assigned", "Not opened", "Open", "Submitted", "Overdue",
                            "Deviations"], arm_table, ""),
            "seniors": _table(["Senior", "Site", "Ready, not opened", "Open (in review)",
                               "Overdue (in review)", "Signed"], senior_table,
                              "No senior yet.", 2),
            "waiting": _table(["Site", "Ready, not opened", "Overdue, not opened",
                               "Open (in review)", "Seniors covering the site"],
                              site_wait_table, "No site yet."),
            "ratings": _table(["Campaign", "Status", "Rater", "Given", "Submitted",
                               "Outstanding"], rating_table, "No rating campaign yet.", 3),
            "deviations": _table(["Arm", "Deviation", "Readings"], deviation_table,
                                 "No protocol deviation recorded.", 2),
            "overdue": _table(["Who", "Role", "What", "How many"], overdue_table,
                              "Nothing overdue.", 3),
            "deliveries": _table(["Case", "PACS", "Reason", "Attempts"], delivery_table,
                                 "No failed delivery.", 3),
        },
        "figures": {
            "enrolment": curve,
            "completion": {"svg": figures.completion_svg(bars),
                           "text": figures.completion_text(bars)},
        },
        "actions": next_actions(
            trial, links=links, cases=cases, draft_n=draft_n, endpoint=endpoint,
            people=people, reader_table=reader_table, seniors=seniors, in_review=in_review,
            unopened=unopened, sites=sites, covered=covered, everywhere=everywhere,
            readings=readings, campaigns=campaigns, per_campaign=per_campaign,
            reading_hours=reading_hours, review_days=review_days,
            deliveries_failed=numbers["deliveries.failed"]),
    }


def _completion_bars(label: dict[str, str], per_arm: dict[str, dict[str, int]],
                     cases: dict[str, int], reviews: dict[str, int],
                     campaigns: list[dict[str, Any]], per_campaign: dict[int, dict[str, int]]
                     ) -> list[dict[str, Any]]:
    bars = []
    for arm in ARMS:
        a = per_arm[arm]
        bars.append({"label": f"Readings, {label[arm]}", "total": a["assigned"], "segments": [
            ("submitted", a["submitted"]), ("open", a["open"]),
            ("not opened", a["not_opened"])]})
    waiting_readings = max(0, cases["assigned"] - reviews["signed"] - reviews["waiting"])
    bars.append({"label": "Final reports", "total": max(
        cases["assigned"], reviews["signed"] + reviews["waiting"]), "segments": [
        ("signed", reviews["signed"]), ("in review", reviews["in_review"]),
        ("ready, not opened", reviews["ready"]), ("readings not in", waiting_readings)]})
    for c in campaigns:
        given, done = per_campaign[c["pk"]]["given"], per_campaign[c["pk"]]["submitted"]
        bars.append({"label": f"Ratings, {c['name']}", "total": given, "segments": [
            ("submitted", done), ("outstanding", given - done)]})
    return bars


def next_actions(trial: Trial, *, links: bool, cases: dict[str, int], draft_n: dict[str, int],
                 endpoint: ModelEndpoint | None, people: list[dict[str, Any]],
                 reader_table: list[tuple[str, list[Any]]], seniors: list[dict[str, Any]],
                 in_review: dict[int, dict[str, int]], unopened: dict[int, dict[str, int]],
                 sites: list[dict[str, Any]], covered: set, everywhere: bool,
                 readings: dict[str, int], campaigns: list[dict[str, Any]],
                 per_campaign: dict[int, dict[str, int]], reading_hours: float,
                 review_days: float, deliveries_failed: int = 0) -> list[dict[str, Any]]:
    """Plain sentences, most pressing first; each with a link where the coordinator acts."""
    actions: list[dict[str, Any]] = []

    def add(text: str, url: str | None = None, level: str = "warn") -> None:
        actions.append({"text": text, "url": url if links else None, "level": level})

    trial_page = _admin("admin:trial_trial_change", trial.pk)
    unallocated = sum(1 for p in people if p["role"] == Role.READER
                      and not p["allocation_slot__arm"])
    if unallocated:
        add(f"{plural(unallocated, 'reader')} not allocated to an arm: allocate readers.",
            trial_page)
    if cases["unassigned"]:
        add(f"{plural(cases['unassigned'], 'case')} enrolled but not assigned: assign cases.",
            trial_page)
    if cases[Case.Status.SCREENED]:
        add(f"{plural(cases[Case.Status.SCREENED], 'case')} screened and awaiting a decision: "
            "record consent and enrol, or exclude.",
            _admin("admin:trial_case_changelist", trial__id__exact=trial.pk,
                   status__exact=Case.Status.SCREENED))
    if endpoint is None and cases[Case.Status.ENROLLED]:
        add("No active model endpoint: the AI-assisted arm gets no drafts; set one up.",
            _admin("admin:drafting_modelendpoint_changelist"))
    if draft_n["failed"]:
        add(f"{plural(draft_n['failed'], 'draft')} failed: retry.",
            reverse("monitor:retry-drafts", args=[trial.slug]))
    if deliveries_failed:
        add(f"{plural(deliveries_failed, 'final report')} not delivered to the site's PACS: "
            "fix the cause, then retry.", reverse("monitor:retry-deliveries", args=[trial.slug]))
    if draft_n["missing"]:
        add(f"{plural(draft_n['missing'], 'enrolled case')} without an AI draft: "
            "queue missing drafts.", trial_page)
    hours = _g(reading_hours)
    for _key, cells in sorted(reader_table, key=lambda r: -r[1][6]):
        if cells[6]:
            add(f"Reader {cells[0]} has {plural(cells[6], 'overdue reading')} "
                f"(open more than {hours} h).",
                _admin("admin:reader_reading_changelist",
                       assignment__case__trial__id__exact=trial.pk,
                       status__exact=Reading.Status.OPEN))
    days = _g(review_days)
    for s in seniors:
        n = in_review[s["pk"]]["overdue"]
        if n:
            add(f"Senior {s['user__username']} has {plural(n, 'final report')} waiting more "
                f"than {days} days.")
    for site in sites:
        u = unopened.get(site["pk"])
        if not u or not u["waiting"]:
            continue
        if not everywhere and site["pk"] not in covered:
            add(f"{plural(u['waiting'], 'case')} at site {site['code']} ready for a final "
                "report, but no senior covers the site: add a senior.",
                _admin("admin:trial_membership_changelist", trial__id__exact=trial.pk))
        elif u["overdue"]:
            add(f"{plural(u['overdue'], 'case')} at site {site['code']} waiting for a senior "
                f"more than {days} days, not yet opened.")
    if readings["deviations"]:
        add(f"{plural(readings['deviations'], 'reading')} with a protocol deviation: review "
            "them.", _admin("admin:reader_reading_changelist",
                            assignment__case__trial__id__exact=trial.pk), level="info")
    for c in campaigns:
        given, done = per_campaign[c["pk"]]["given"], per_campaign[c["pk"]]["submitted"]
        if c["status"] == Campaign.Status.OPEN and given and done == given:
            add(f"Campaign {c['name']}: every item is rated: close it.",
                _admin("admin:rating_campaign_change", c["pk"]), level="info")
    if not actions:
        add("Nothing needs doing now.", level="ok")
    return actions
