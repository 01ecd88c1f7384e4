"""Send the summary e-mails that are due: one per person, for all their trials' work.

``send_due`` is run by the Celery beat task (``notify.tasks``) and by ``manage.py
send_notifications``. For each person with a role in a trial whose notifications are on (and
not locked), and who has not turned e-mails off:

- a trial's work is *due* for them when no e-mail about that trial reached them within the
  trial's interval (``NotificationSettings.interval_hours``, default 24);
- they get one e-mail holding every due part that has work in it (cases to read, cases to
  finalise, items to rate, failed drafts and overdue work), unless any e-mail reached them
  within the shortest interval of those trials: so one e-mail per person per period;
- nothing is sent to a person with nothing waiting.

Sending is idempotent within the interval: what was sent is in the ``Notification`` log, and
each person's send is made under a row lock, so two runs at once do not both mail them. One
failed send is logged (a failed ``Notification``) and does not stop the others; it is tried
again at the next run. Each trial's batch is audited (kind and number of recipients).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from trial import audit
from trial.models import Membership, Trial

from .models import MAX_INTERVAL_HOURS, Kind, Notification, NotificationPreference
from .preferences import opted_out_user_ids, trial_rules
from .work import KIND_OF_ROLE, Section, WorkCounter, site_url

logger = logging.getLogger(__name__)

SITE_NAME = "CXR reader trials"
# A run a few minutes early still counts as a full interval: an hourly run must not slip by an
# hour each day because the previous one finished a little later.
GRACE = timedelta(minutes=5)
ERROR_CHARS = 500


@dataclass
class Planned:
    """One e-mail to one person: what it says, and what the log and the audit will keep."""

    user: Any
    address: str
    sections: list[Section]
    interval_hours: int
    last_sent: datetime | None
    subject: str = ""
    body: str = ""

    @property
    def trials(self) -> list[Trial]:
        return list({s.trial.pk: s.trial for s in self.sections}.values())

    @property
    def kinds(self) -> list[str]:
        return [k for k in Kind.values if any(s.kind == k for s in self.sections)]

    @property
    def counts(self) -> list[dict]:
        return [s.counts for s in self.sections]


@dataclass
class Summary:
    now: datetime
    dry_run: bool
    planned: list[Planned] = field(default_factory=list)
    sent: list[Planned] = field(default_factory=list)
    failed: list[tuple[Planned, str]] = field(default_factory=list)
    skipped: list[Planned] = field(default_factory=list)  # another run mailed them meanwhile
    no_address: list[str] = field(default_factory=list)  # usernames with work and no e-mail

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "planned": len(self.planned), "sent": len(self.sent),
                "failed": len(self.failed), "skipped": len(self.skipped),
                "no_address": len(self.no_address)}


def _due(last: datetime | None, hours: int, now: datetime) -> bool:
    return last is None or now - last >= timedelta(hours=hours) - GRACE


class _History:
    """What the log says was sent: last e-mail per person and per (person, trial), and the
    campaigns each rater has already been told about."""

    def __init__(self, now: datetime) -> None:
        horizon = now - timedelta(hours=MAX_INTERVAL_HOURS)
        sent = Notification.objects.filter(status=Notification.Status.SENT,
                                           sent_at__gte=horizon)
        self.by_user = dict(sent.values("user").annotate(last=Max("sent_at"))
                            .values_list("user", "last"))
        self.by_trial = {
            (row["notification__user"], row["trial"]): row["last"]
            for row in Notification.trials.through.objects
            .filter(notification__in=sent).values("notification__user", "trial")
            .annotate(last=Max("notification__sent_at"))}
        self._campaigns: dict[int, set[int]] = {}

    def campaigns_seen(self, user_id: int) -> set[int]:
        if user_id not in self._campaigns:
            seen = set()
            for counts in Notification.objects.filter(
                    user_id=user_id, status=Notification.Status.SENT).values_list(
                    "counts", flat=True):
                for part in counts or []:
                    if isinstance(part, dict) and part.get("kind") == Kind.RATER:
                        seen.update(c.get("campaign") for c in part.get("campaigns", []))
            self._campaigns[user_id] = seen
        return self._campaigns[user_id]


def _memberships(trial_ids: Iterable[int]) -> dict[int, list[Membership]]:
    """Memberships that get e-mails, by user: active people who did not opt out."""
    members = (Membership.objects.filter(trial_id__in=list(trial_ids),
                                         role__in=list(KIND_OF_ROLE), user__is_active=True)
               .exclude(user_id__in=opted_out_user_ids())
               .select_related("trial", "user", "site")
               .order_by("user__username", "trial__name", "role"))
    by_user: dict[int, list[Membership]] = defaultdict(list)
    for member in members:
        by_user[member.user_id].append(member)
    return by_user


def render(planned: Planned) -> tuple[str, str]:
    """(subject, plain-text body) of a summary e-mail."""
    user = planned.user
    context = {
        "site_name": SITE_NAME,
        "name": user.get_full_name() or user.get_username(),
        "sections": planned.sections,
        "interval_hours": planned.interval_hours,
        "preferences_url": site_url(reverse("notify:preferences")),
    }
    subject = render_to_string("notify/subject.txt", context)
    body = render_to_string("notify/digest.txt", context)
    return " ".join(subject.split()), body.strip() + "\n"


def plan(now: datetime) -> tuple[list[Planned], list[str]]:
    """The e-mails due at ``now`` (nothing sent, nothing written), and the usernames of people
    with work due but no e-mail address."""
    trials = list(Trial.objects.exclude(status=Trial.Status.LOCKED).values_list("pk", flat=True))
    rules = {pk: rule for pk, rule in trial_rules(trials).items() if rule.enabled}
    history = _History(now)
    counter = WorkCounter(now, history.campaigns_seen)
    planned, no_address = [], []
    for user_id, members in _memberships(rules).items():
        due = [m for m in members
               if _due(history.by_trial.get((user_id, m.trial_id)),
                       rules[m.trial_id].interval_hours, now)]
        sections = [s for s in (counter.section(m) for m in due) if s is not None]
        if not sections:
            continue
        hours = min(rules[s.trial.pk].interval_hours for s in sections)
        last = history.by_user.get(user_id)
        if not _due(last, hours, now):
            continue  # mailed within the period about another trial: wait, then send together
        user = members[0].user
        if not user.email:
            no_address.append(user.get_username())
            continue
        item = Planned(user=user, address=user.email, sections=sections, interval_hours=hours,
                       last_sent=last)
        item.subject, item.body = render(item)
        planned.append(item)
    return planned, no_address


def _log(item: Planned, now: datetime, status: str, error: str = "") -> Notification:
    notification = Notification.objects.create(
        user=item.user, address=item.address, kinds=item.kinds, sent_at=now, status=status,
        counts=item.counts, error=error[:ERROR_CHARS])
    notification.trials.set(item.trials)
    return notification


def _deliver(item: Planned, now: datetime, connection: Any) -> tuple[str, str]:
    """Send one e-mail under the person's row lock; ("sent" | "failed" | "skipped", error)."""
    with transaction.atomic():
        pref, _ = NotificationPreference.objects.select_for_update().get_or_create(
            user=item.user)
        last = (Notification.objects.filter(user=item.user, status=Notification.Status.SENT)
                .aggregate(last=Max("sent_at"))["last"])
        if not pref.email_enabled or (last != item.last_sent and not _due(
                last, item.interval_hours, now)):
            return "skipped", ""
        message = EmailMessage(item.subject, item.body, from_email=settings.DEFAULT_FROM_EMAIL,
                               to=[item.address], connection=connection)
        try:
            if message.send() != 1:
                raise RuntimeError("The e-mail backend did not send the message.")
        except Exception as exc:  # one address or server failing must not stop the others
            error = f"{exc.__class__.__name__}: {exc}"
            logger.warning("Notification e-mail to %s failed; it is tried again at the next "
                           "run: %s", item.user.get_username(), error)
            _log(item, now, Notification.Status.FAILED, error)
            return "failed", error
        _log(item, now, Notification.Status.SENT)
        return "sent", ""


def _audit(summary: Summary) -> None:
    """One audit event per trial and kind: how many people were mailed (and how many failed)."""
    batches: dict[tuple[int, str], dict] = {}
    outcomes = [(item, "recipients") for item in summary.sent] + [
        (item, "failed") for item, _ in summary.failed]
    for item, outcome in outcomes:
        for section in item.sections:
            batch = batches.setdefault((section.trial.pk, section.kind), {
                "trial": section.trial, "recipients": 0, "failed": 0})
            batch[outcome] += 1
    for (_, kind), batch in sorted(batches.items(), key=lambda kv: kv[0]):
        trial = batch["trial"]
        audit.record(action="notifications.sent", obj=trial, trial=trial,
                     after={"kind": kind, "recipients": batch["recipients"],
                            "failed": batch["failed"]})


def send_due(now: datetime | None = None, *, dry_run: bool = False) -> Summary:
    """Compute and send the e-mails due at ``now`` (default: now); ``dry_run`` sends nothing
    and writes nothing. Returns what was planned, sent, failed and skipped."""
    now = now or timezone.now()
    planned, no_address = plan(now)
    summary = Summary(now=now, dry_run=dry_run, planned=planned, no_address=no_address)
    if dry_run:
        return summary
    connection = get_connection()
    for item in planned:
        outcome, error = _deliver(item, now, connection)
        if outcome == "sent":
            summary.sent.append(item)
        elif outcome == "failed":
            summary.failed.append((item, error))
        else:
            summary.skipped.append(item)
    _audit(summary)
    return summary
