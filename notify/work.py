"""What is waiting for whom: the parts of a person's summary e-mail, counted from the records.

Read-only. Each part is about one role in one trial, and says only how many: never a case
id, an arm, a report source or any report or clinical text. Links go to the person's own
worklist pages (``SITE_URL`` + the page's address), never to a case. A rater's part names
neither the trial nor the campaign (coordinators may name either after an arm): campaigns are
numbered, as on the rater's own pages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Max, Q
from django.urls import reverse

from drafting.models import Draft
from drafting.queries import active_endpoint
from rating.models import Campaign, RaterItem
from reader.models import Reading, Review
from reader.review import reviewable_cases
from reader.worklist import worklist
from trial.models import Case, Membership, Role, Trial

from .models import Kind

# The roles that get e-mails, and what about.
KIND_OF_ROLE = {Role.READER: Kind.READER, Role.SENIOR: Kind.SENIOR, Role.RATER: Kind.RATER,
                Role.COORDINATOR: Kind.COORDINATOR}
RATER_HEADING = "Blinded rating"

# Why drafts failed, as categories: a draft's error may quote the model server's reply (which
# may echo the prompt, i.e. the clinical history), so it is never copied into an e-mail.
FAILURE_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"HTTP (\d{3}) from the model server"), "HTTP {0} from the model server"),
    (re.compile(r"No reply within"), "no reply from the model server in time"),
    (re.compile(r"Cannot reach "), "model server unreachable"),
    (re.compile(r"the endpoint's API key"), "API key not set in the worker's environment"),
    (re.compile(r"not JSON|not a chat completion|content is not text"),
     "unusable reply from the model server"),
    (re.compile(r"empty report|headers but no report text"), "empty report from the model"),
    (re.compile(r"no image to send"), "case without an image"),
    (re.compile(r"prompt template is invalid"), "invalid prompt template"),
    (re.compile(r"Cannot prepare the image"), "image could not be prepared"),
)
OTHER_REASON = "other error (see the draft list)"


def overdue_reading_hours() -> float:
    """A reading open longer than this is overdue (``OVERDUE_READING_HOURS``, default 24)."""
    return float(getattr(settings, "OVERDUE_READING_HOURS", 24))


def overdue_review_days() -> float:
    """A case ready for its senior longer than this is overdue (``OVERDUE_REVIEW_DAYS``, 3)."""
    return float(getattr(settings, "OVERDUE_REVIEW_DAYS", 3))


def site_url(path: str) -> str:
    """``path`` on the public site (``SITE_URL``)."""
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/") + path


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class Entry:
    text: str
    url: str


@dataclass
class Section:
    """One role's work in one trial: what the e-mail says, and the numbers the log keeps."""

    trial: Trial
    kind: str
    heading: str
    entries: list[Entry] = field(default_factory=list)
    counts: dict = field(default_factory=dict)


def failure_reason(error: str) -> str:
    """The category of a draft's error (never its text)."""
    for pattern, label in FAILURE_REASONS:
        found = pattern.search(error or "")
        if found:
            return label.format(*found.groups())
    return OTHER_REASON


def reader_section(member: Membership) -> Section | None:
    """Cases the reader can open now: assigned, not submitted, AI-arm ones with their draft
    done (as their worklist shows them)."""
    available = [item for item in worklist(member) if item.available]
    if not available:
        return None
    started = sum(item.state == "open" for item in available)
    text = f"{plural(len(available), 'case')} waiting in your worklist"
    if started:
        text += f" ({started} started, not yet submitted)"
    url = site_url(reverse("reader:worklist", args=[member.trial.slug]))
    return Section(member.trial, Kind.READER, f"{member.trial.name}: reading",
                   [Entry(text + ".", url)],
                   {"trial": member.trial_id, "kind": Kind.READER, "waiting": len(available),
                    "started": started})


def senior_section(member: Membership) -> Section | None:
    """Cases with both readings submitted and no signed final report, for this senior."""
    ready = reviewable_cases(member).exclude(review__status=Review.Status.SIGNED).count()
    if not ready:
        return None
    text = f"{plural(ready, 'case')} ready for your final report."
    url = site_url(reverse("reader:reviews", args=[member.trial.slug]))
    return Section(member.trial, Kind.SENIOR, f"{member.trial.name}: final reports",
                   [Entry(text, url)],
                   {"trial": member.trial_id, "kind": Kind.SENIOR, "ready": ready})


def rater_section(member: Membership, seen_campaigns: Iterable[int]) -> Section | None:
    """Open campaigns in which the rater has items left; a campaign not in any earlier e-mail
    to them (``seen_campaigns``) is announced as newly open."""
    rows = (RaterItem.objects.filter(rater=member, campaign__status=Campaign.Status.OPEN)
            .values("campaign").annotate(total=Count("pk"), rated=Count("rating"))
            .order_by("campaign"))
    seen = set(seen_campaigns)
    entries, counts = [], []
    for row in rows:
        left = row["total"] - row["rated"]
        if left <= 0:
            continue
        number, new = row["campaign"], row["campaign"] not in seen
        if new:
            text = f"Campaign {number} is open for rating: you have {plural(left, 'item')} to rate."
        else:
            text = (f"Campaign {number}: {plural(left, 'item')} still to rate "
                    f"({row['rated']} of {row['total']} rated).")
        url = site_url(reverse("rating:rate", args=[member.trial.slug, number]))
        entries.append(Entry(text, url))
        counts.append({"campaign": number, "to_rate": left, "total": row["total"], "new": new})
    if not entries:
        return None
    return Section(member.trial, Kind.RATER, RATER_HEADING, entries,
                   {"trial": member.trial_id, "kind": Kind.RATER, "campaigns": counts})


def failed_drafts(trial: Trial) -> Counter[str]:
    """Failed drafts of the trial's endpoint as configured now, by reason category."""
    endpoint = active_endpoint(trial)
    if endpoint is None:
        return Counter()
    errors = Draft.objects.filter(case__trial=trial, fingerprint=endpoint.fingerprint,
                                  status=Draft.Status.FAILED).values_list("error", flat=True)
    return Counter(failure_reason(error) for error in errors)


def overdue_readings(trial: Trial, now: datetime) -> int:
    """Readings opened more than ``OVERDUE_READING_HOURS`` ago and not submitted."""
    cutoff = now - timedelta(hours=overdue_reading_hours())
    return Reading.objects.filter(assignment__case__trial=trial, status=Reading.Status.OPEN,
                                  opened_at__lt=cutoff).count()


def overdue_reviews(trial: Trial, now: datetime) -> int:
    """Cases whose second reading was submitted more than ``OVERDUE_REVIEW_DAYS`` ago and that
    have no signed final report yet."""
    cutoff = now - timedelta(days=overdue_review_days())
    submitted = Q(assignments__reading__status=Reading.Status.SUBMITTED)
    return (Case.objects.filter(trial=trial)
            .filter(Q(review__isnull=True) | Q(review__status=Review.Status.OPEN))
            .annotate(readings=Count("assignments__reading", filter=submitted),
                      ready_at=Max("assignments__reading__submitted_at", filter=submitted))
            .filter(readings=2, ready_at__lt=cutoff).count())


def _admin_list(name: str, **filters: object) -> str:
    return site_url(f"{reverse(name)}?{urlencode(filters)}")


def coordinator_section(trial: Trial, now: datetime) -> Section | None:
    """Failed drafts (how many, and why by category) and overdue work, for the coordinators."""
    failed = failed_drafts(trial)
    readings, reviews = overdue_readings(trial, now), overdue_reviews(trial, now)
    entries = []
    if failed:
        why = ", ".join(f"{reason} ({n})" for reason, n in
                        sorted(failed.items(), key=lambda kv: (-kv[1], kv[0])))
        entries.append(Entry(
            f"{plural(sum(failed.values()), 'AI draft')} failed: {why}.",
            _admin_list("admin:drafting_draft_changelist", case__trial__id__exact=trial.pk,
                        configuration="current", status__exact=Draft.Status.FAILED)))
    if readings:
        hours = f"{overdue_reading_hours():g}"
        entries.append(Entry(
            f"{plural(readings, 'reading')} open for more than {hours} hours.",
            _admin_list("admin:reader_reading_changelist",
                        assignment__case__trial__id__exact=trial.pk,
                        status__exact=Reading.Status.OPEN)))
    if reviews:
        days = f"{overdue_review_days():g}"
        entries.append(Entry(
            f"{plural(reviews, 'case')} ready for a senior's final report for more than "
            f"{days} days.",
            site_url(reverse("admin:trial_trial_change", args=[trial.pk]))))
    if not entries:
        return None
    return Section(trial, Kind.COORDINATOR, f"{trial.name}: coordination", entries,
                   {"trial": trial.pk, "kind": Kind.COORDINATOR,
                    "failed_drafts": sum(failed.values()), "failed_reasons": dict(failed),
                    "overdue_readings": readings, "overdue_reviews": reviews})


class WorkCounter:
    """Sections per membership, each trial's coordinator section counted once per run."""

    def __init__(self, now: datetime, seen_campaigns: Callable[[int], Iterable[int]]) -> None:
        self.now = now
        self.seen_campaigns = seen_campaigns
        self._coordination: dict[int, Section | None] = {}

    def section(self, member: Membership) -> Section | None:
        if member.role == Role.READER:
            return reader_section(member)
        if member.role == Role.SENIOR:
            return senior_section(member)
        if member.role == Role.RATER:
            return rater_section(member, self.seen_campaigns(member.user_id))
        if member.role == Role.COORDINATOR:
            if member.trial_id not in self._coordination:
                self._coordination[member.trial_id] = coordinator_section(member.trial, self.now)
            return self._coordination[member.trial_id]
        return None
