"""Notification e-mails: who gets what, the links, what they never say, batching, opt-outs,
trial settings, a failing address, the dry run, the command, the task, the page and the admin.

One trial with work for every role: a reader with an open reading and a case held back by a
failed draft, a reader with two new cases, a senior with one case to finalise, two raters in
an open campaign named after the arms, and a coordinator with a failed draft (whose error
quotes the case). Sent through the locmem backend (``django.core.mail.outbox``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from drafting.models import Draft, ModelEndpoint
from drafting.queries import current_draft
from notify import send, tasks
from notify.models import Kind, Notification, NotificationPreference, NotificationSettings
from notify.preferences import set_email_enabled
from notify.send import send_due
from rating import build, ratings
from rating import instruments as inst
from rating.models import Campaign, RatedReport
from reader import reading, review
from reader.models import Reading, Review
from tests.notify import backends
from tests.support.campaign_world import AI_TEXT, SCP_TEXT, SIGNATURE, read_and_sign
from tests.support.factories import (
    PASSWORD,
    CaseFactory,
    MembershipFactory,
    TrialFactory,
    UserFactory,
)
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent, Case, Membership, Role

pytestmark = pytest.mark.django_db

SITE = "https://trials.example.org"
CAMPAIGN_NAME = "Round 1: AI-assisted vs SCP"
DRAFT_ERROR = "HTTP 500 from the model server: {{\"prompt\": \"{history} of case {case_id}\"}}"
URL = re.compile(r"https?://\S+")


@dataclass
class World:
    read: ReadWorld
    coordinator: Membership
    raters: list[Membership]
    campaign: Campaign
    failed_case: Case

    @property
    def trial(self):
        return self.read.trial

    def reader(self, arm: str):
        return self.read.readers[arm].user


def submit_both(world: ReadWorld, case: Case) -> None:
    for arm in (Arm.AI_ASSISTED, Arm.SCP):
        opened = reading.open_reading(world.readers[arm].assignments.get(case=case), user=None)
        text = AI_TEXT if arm == Arm.AI_ASSISTED else SCP_TEXT
        reading.submit(opened, findings=f"{text} ({case.case_id}).\n{SIGNATURE}",
                       impression="Pneumonia.", version=opened.version)


def sign(world: ReadWorld, case: Case) -> None:
    opened = review.open_review(case, senior=world.senior)
    review.sign(opened, findings=f"Reference opacity ({case.case_id}).",
                impression="Right lower lobe pneumonia.", version=opened.version,
                by=world.senior.user, password=PASSWORD)


@pytest.fixture(autouse=True)
def _mail(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = SITE + "/"
    settings.DEFAULT_FROM_EMAIL = "trials@example.org"


@pytest.fixture
def world(tmp_path) -> World:
    read = build_read_world(tmp_path, cases=4)
    read_and_sign(read, 0)  # case 0: read and signed (rated in the campaign)
    submit_both(read, read.assignment(Arm.AI_ASSISTED, 1).case)  # case 1: for the senior
    reading.open_reading(read.assignment(Arm.AI_ASSISTED, 2), user=None)  # started
    failed_case = read.assignment(Arm.AI_ASSISTED, 3).case  # its draft failed: held back
    Draft.objects.filter(pk=current_draft(failed_case).pk).update(
        status=Draft.Status.FAILED,
        error=DRAFT_ERROR.format(history=failed_case.chief_complaint,
                                 case_id=failed_case.case_id))
    raters = [MembershipFactory(trial=read.trial, role=Role.RATER) for _ in range(2)]
    campaign = Campaign.objects.create(trial=read.trial, name=CAMPAIGN_NAME,
                                       instruments=list(inst.ALL), seed=1)
    campaign.raters.set(raters)
    build.build(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.OPEN)
    coordinator = Membership.objects.get(trial=read.trial, role=Role.COORDINATOR)
    mail.outbox.clear()
    return World(read=read, coordinator=coordinator, raters=raters, campaign=campaign,
                 failed_case=failed_case)


def by_address() -> dict[str, mail.EmailMessage]:
    found = {}
    for message in mail.outbox:
        assert len(message.to) == 1
        assert message.to[0] not in found, f"two e-mails to {message.to[0]}"
        found[message.to[0]] = message
    return found


def links(message: mail.EmailMessage) -> list[str]:
    return URL.findall(message.body)


# --- who gets what ------------------------------------------------------------------------------

def test_each_person_gets_one_summary_of_their_work_with_links_to_their_worklists(world):
    summary = send_due()
    sent = by_address()
    slug = world.trial.slug
    ai, scp = world.reader(Arm.AI_ASSISTED), world.reader(Arm.SCP)
    senior, coordinator = world.read.senior.user, world.coordinator.user
    raters = [m.user for m in world.raters]
    assert set(sent) == {u.email for u in (ai, scp, senior, coordinator, *raters)}
    assert summary.as_dict()["sent"] == 6 and not summary.failed
    preferences = f"{SITE}/notifications/"
    for message in sent.values():
        assert message.from_email == "trials@example.org"
        assert message.subject == "CXR reader trials: work waiting for you"
        assert all(link.startswith(SITE + "/") for link in links(message))
        assert links(message)[-1] == preferences
        assert "turn them off" in message.body

    # readers: what they can open now (the case held back by its failed draft is not counted)
    body = sent[ai.email].body
    assert f"{world.trial.name}: reading" in body
    assert "1 case waiting in your worklist (1 started, not yet submitted)." in body
    assert links(sent[ai.email])[:-1] == [f"{SITE}/read/{slug}/"]
    assert "2 cases waiting in your worklist." in sent[scp.email].body
    assert links(sent[scp.email])[:-1] == [f"{SITE}/read/{slug}/"]

    # the senior: cases with both readings in and no signed final report
    assert "1 case ready for your final report." in sent[senior.email].body
    assert links(sent[senior.email])[:-1] == [f"{SITE}/review/{slug}/"]

    # raters: the campaign by number only, newly open
    for rater in raters:
        message = sent[rater.email]
        assert "Blinded rating" in message.body
        assert (f"Campaign {world.campaign.pk} is open for rating: you have 3 items to rate."
                in message.body)
        assert links(message)[:-1] == [f"{SITE}/rate/{slug}/{world.campaign.pk}/"]

    # the coordinator: failed drafts by reason category, linked to the filtered draft list
    message = sent[coordinator.email]
    assert f"{world.trial.name}: coordination" in message.body
    assert "1 AI draft failed: HTTP 500 from the model server (1)." in message.body
    (draft_list,) = links(message)[:-1]
    assert draft_list.startswith(f"{SITE}/admin/drafting/draft/?")
    assert f"case__trial__id__exact={world.trial.pk}" in draft_list
    assert "status__exact=failed" in draft_list and "configuration=current" in draft_list
    log = Notification.objects.get(user=coordinator)
    assert log.status == Notification.Status.SENT and log.kinds == [Kind.COORDINATOR]
    assert list(log.trials.all()) == [world.trial]
    assert log.counts == [{"trial": world.trial.pk, "kind": "coordinator", "failed_drafts": 1,
                           "failed_reasons": {"HTTP 500 from the model server": 1},
                           "overdue_readings": 0, "overdue_reviews": 0}]


def test_coordinators_hear_of_overdue_readings_and_reviews(world, settings, client):
    settings.OVERDUE_READING_HOURS = 12
    settings.OVERDUE_REVIEW_DAYS = 2
    send_due(timezone.now() + timedelta(hours=11))
    body = by_address()[world.coordinator.user.email].body
    assert "open for more than" not in body and "for more than 2 days" not in body
    mail.outbox.clear()
    send_due(timezone.now() + timedelta(days=2, hours=12))
    message = by_address()[world.coordinator.user.email]
    assert "1 reading open for more than 12 hours." in message.body
    assert "1 case ready for a senior's final report for more than 2 days." in message.body
    readings, trial_page = links(message)[1:3]
    assert readings.startswith(f"{SITE}/admin/reader/reading/?")
    assert "status__exact=open" in readings
    assert trial_page == f"{SITE}/admin/trial/trial/{world.trial.pk}/change/"
    # each link opens the coordinator's page as filtered (an unknown filter would redirect)
    user = world.coordinator.user
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    for link in links(message):
        assert client.get(link.removeprefix(SITE)).status_code == 200, link


def test_overdue_defaults_are_a_day_for_readings_and_three_days_for_reviews(world):
    send_due(timezone.now() + timedelta(hours=23))
    assert "open for more than" not in by_address()[world.coordinator.user.email].body
    mail.outbox.clear()
    send_due(timezone.now() + timedelta(days=3, hours=1))
    body = by_address()[world.coordinator.user.email].body
    assert "1 reading open for more than 24 hours." in body
    assert "1 case ready for a senior's final report for more than 3 days." in body


def forbidden_strings(world: World) -> list[str]:
    """Everything an e-mail must never contain, each proven present in the database."""
    trial = world.trial
    case_ids = list(Case.objects.filter(trial=trial).values_list("case_id", flat=True))
    assert len(case_ids) == 4 and world.failed_case.case_id in case_ids
    labels = [trial.ai_assisted_label, trial.scp_label, Arm.AI_ASSISTED.label, Arm.SCP.label]
    assert labels == ["AI-assisted", "Standard clinical practice", "AI-assisted", "SCP"]
    sources = sorted(set(RatedReport.objects.filter(campaign=world.campaign)
                         .values_list("source", flat=True)))
    assert sources == [Arm.AI_ASSISTED.value, Arm.SCP.value]
    assert Reading.objects.filter(findings__contains=AI_TEXT).exists()
    assert Reading.objects.filter(findings__contains=SCP_TEXT).exists()
    assert Reading.objects.filter(findings__contains=SIGNATURE).exists()
    assert Review.objects.filter(impression="Right lower lobe pneumonia.").exists()
    drafts = [d for d in Draft.objects.filter(case__trial=trial, status=Draft.Status.DONE)
              .values_list("findings", flat=True) if d]
    assert drafts
    failed_error = Draft.objects.get(status=Draft.Status.FAILED).error
    assert world.failed_case.case_id in failed_error and "cough, fever" in failed_error
    assert Case.objects.filter(trial=trial, chief_complaint="cough, fever").count() == 4
    assert Campaign.objects.filter(name=CAMPAIGN_NAME).exists()
    return [*case_ids, *labels, *sources, AI_TEXT, SCP_TEXT, SIGNATURE, "Quillfeather",
            "Right lower lobe pneumonia", "Reference opacity", *drafts, "cough, fever",
            failed_error, CAMPAIGN_NAME, "Round 1", "Pneumonia."]


def test_no_email_names_a_case_an_arm_a_source_or_any_report_text(world, settings):
    settings.OVERDUE_REVIEW_DAYS = 0
    send_due(timezone.now() + timedelta(days=2))  # every kind, overdue work included
    assert len(mail.outbox) == 6
    forbidden = forbidden_strings(world)
    case_pks = set(Case.objects.filter(trial=world.trial).values_list("pk", flat=True))
    for message in mail.outbox:
        text = f"{message.subject}\n{message.body}".lower()
        for value in forbidden:
            assert value.lower() not in text, f"{value!r} in the e-mail to {message.to}"
        assert not re.search(r"\bscp\b|ai[-_ ]assisted|\barm\b", text)
        for link in links(message):
            assert not re.search(r"/(read|review)/[^/]+/\d+", link), link
            assert "case__id" not in link and "case_id" not in link
            assert not any(f"/{pk}/" in link for pk in case_pks if pk != world.trial.pk
                           and pk != world.campaign.pk), link
    # raters are not told the trial's name either (it may name the model or an arm)
    for rater in world.raters:
        body = by_address()[rater.user.email].body
        assert world.trial.name not in body and world.trial.registry_id not in body


# --- batching -----------------------------------------------------------------------------------

def test_nothing_twice_within_the_interval_and_again_after_it_only_while_work_waits(world):
    now = timezone.now()
    first = send_due(now)
    assert len(first.sent) == 6
    mail.outbox.clear()
    assert not send_due(now + timedelta(hours=1)).planned
    assert not send_due(now + timedelta(hours=23)).planned
    assert mail.outbox == []
    # the senior finalises their case; a rater rates everything: nothing waits for them
    sign(world.read, world.read.assignment(Arm.AI_ASSISTED, 1).case)
    done = world.raters[0]
    for rater_item in done.rater_items.select_related("item"):
        rate(rater_item)
    assert not done.rater_items.filter(rating__isnull=True).exists()
    mail.outbox.clear()
    later = send_due(now + timedelta(hours=24, minutes=1))
    sent = by_address()
    assert world.read.senior.user.email not in sent
    assert done.user.email not in sent
    assert world.reader(Arm.AI_ASSISTED).email in sent
    still = sent[world.raters[1].user.email].body
    assert f"Campaign {world.campaign.pk}: 3 items still to rate (0 of 3 rated)." in still
    assert "is open for rating" not in still
    assert len(later.sent) == 4
    assert Notification.objects.filter(user=world.read.senior.user).count() == 1


VALID = {inst.LIKERT: "4", inst.RADPEER: "5", inst.ACCEPTABILITY: "B", inst.PREFERENCE: "A",
         inst.SOURCE_ID: "A", inst.ERRORS: {"false_finding": {"significant": 0,
                                                              "insignificant": 0}}}


def rate(rater_item) -> None:
    """Rate an item through the service, with valid answers for each of its instruments."""
    opened = ratings.open_item(rater_item)
    ratings.submit(opened, {code: VALID[code] for code in rater_item.item.instruments},
                   by=None)


def test_one_email_for_all_of_a_persons_trials_and_a_trial_may_mail_more_often(world):
    other = TrialFactory(name="Second trial")
    MembershipFactory(trial=other, user=world.read.senior.user, role=Role.COORDINATOR)
    endpoint = ModelEndpoint.objects.create(trial=other, name="demo",
                                            backend=ModelEndpoint.Backend.DEMO)
    case = CaseFactory(trial=other, status=Case.Status.ENROLLED)
    Draft.objects.create(case=case, endpoint=endpoint, fingerprint=endpoint.fingerprint,
                         config=endpoint.config(), backend=endpoint.backend,
                         status=Draft.Status.FAILED, queued_at=timezone.now(),
                         error=f"Gave up after 5 attempts; last error: No reply within 60 s "
                               f"({case.case_id}).")
    NotificationSettings.objects.create(trial=other, interval_hours=6)
    now = timezone.now()
    send_due(now)
    senior = world.read.senior.user
    body = by_address()[senior.email].body
    assert "1 case ready for your final report." in body
    assert "Second trial: coordination" in body
    assert "1 AI draft failed: no reply from the model server in time (1)." in body
    assert case.case_id not in body
    assert sorted(Notification.objects.get(user=senior).kinds) == ["coordinator", "senior"]
    assert "at most once every 6 hours" in body
    mail.outbox.clear()
    send_due(now + timedelta(hours=6))  # the second trial's interval has passed, not the first's
    body = by_address()[senior.email].body
    assert "Second trial: coordination" in body and "final report." not in body
    assert len(mail.outbox) == 1
    mail.outbox.clear()
    send_due(now + timedelta(hours=24))  # both: one e-mail again
    body = by_address()[senior.email].body
    assert "Second trial: coordination" in body and "ready for your final report" in body


def test_a_new_trial_waits_for_the_persons_period_instead_of_a_second_email(world):
    now = timezone.now()
    send_due(now)
    other = TrialFactory(name="Late trial")
    coordinator = world.coordinator.user
    MembershipFactory(trial=other, user=coordinator, role=Role.COORDINATOR)
    endpoint = ModelEndpoint.objects.create(trial=other, name="demo",
                                            backend=ModelEndpoint.Backend.DEMO)
    Draft.objects.create(case=CaseFactory(trial=other), endpoint=endpoint,
                         fingerprint=endpoint.fingerprint, config=endpoint.config(),
                         backend=endpoint.backend, status=Draft.Status.FAILED,
                         queued_at=now, error="The case has no image to send.")
    mail.outbox.clear()
    assert not send_due(now + timedelta(hours=2)).planned
    send_due(now + timedelta(hours=24))
    body = by_address()[coordinator.email].body
    assert "Late trial: coordination" in body and f"{world.trial.name}: coordination" in body
    assert "case without an image (1)" in body


# --- turning it off -----------------------------------------------------------------------------

def test_a_person_who_opted_out_gets_nothing(world):
    scp = world.reader(Arm.SCP)
    set_email_enabled(scp, False)
    send_due()
    assert scp.email not in by_address() and len(mail.outbox) == 5
    assert not Notification.objects.filter(user=scp).exists()
    set_email_enabled(scp, True)
    send_due()
    assert scp.email in by_address()


def test_a_trial_with_notifications_off_mails_nobody(world):
    settings_row = NotificationSettings.objects.create(trial=world.trial, enabled=False)
    summary = send_due()
    assert mail.outbox == [] and not summary.planned
    assert not AuditEvent.objects.filter(action="notifications.sent").exists()
    settings_row.enabled = True
    settings_row.save()
    send_due()
    assert len(mail.outbox) == 6


def test_a_locked_trial_mails_nobody(world):
    type(world.trial).objects.filter(pk=world.trial.pk).update(status="locked")
    assert not send_due().planned


def test_people_without_an_address_are_listed_not_mailed(world):
    user = world.reader(Arm.SCP)
    user.email = ""
    user.save(update_fields=["email"])
    summary = send_due()
    assert summary.no_address == [user.get_username()]
    assert len(mail.outbox) == 5


# --- failures -----------------------------------------------------------------------------------

def test_one_refused_address_does_not_stop_the_others_and_is_retried(world, settings, caplog):
    refused = world.reader(Arm.AI_ASSISTED)
    settings.EMAIL_BACKEND = "tests.notify.backends.RefusingBackend"
    backends.REFUSED.add(refused.email)
    try:
        now = timezone.now()
        summary = send_due(now)
    finally:
        backends.REFUSED.clear()
    assert len(summary.sent) == 5 and len(summary.failed) == 1
    assert refused.email not in by_address() and len(mail.outbox) == 5
    assert "SMTPRecipientsRefused" in summary.failed[0][1]
    assert refused.get_username() in caplog.text and "tried again" in caplog.text
    failed = Notification.objects.get(user=refused)
    assert failed.status == Notification.Status.FAILED and "550" in failed.error
    event = AuditEvent.objects.get(action="notifications.sent", after__kind="reader")
    assert event.after == {"kind": "reader", "recipients": 1, "failed": 1}
    mail.outbox.clear()
    retried = send_due(now + timedelta(minutes=10))  # the next run: only the failed one
    assert list(by_address()) == [refused.email] and len(retried.sent) == 1
    assert Notification.objects.filter(user=refused, status="sent").count() == 1


def test_a_person_another_run_mailed_meanwhile_is_skipped(world, monkeypatch):
    """Two runs at once (the beat and the command): the second sees the first's log under the
    person's row lock and does not mail them again."""
    now = timezone.now()
    stale, _ = send.plan(now)  # what the slower run planned
    send_due(now)
    mail.outbox.clear()
    monkeypatch.setattr(send, "plan", lambda _now: (stale, []))
    summary = send_due(now + timedelta(minutes=1))
    assert len(summary.skipped) == 6 and not summary.sent and mail.outbox == []
    assert Notification.objects.count() == 6


# --- audit, dry run, command, task ----------------------------------------------------------------

def test_each_batch_is_audited_by_trial_and_kind(world):
    send_due()
    events = {e.after["kind"]: e for e in AuditEvent.objects.filter(action="notifications.sent")}
    assert {k: e.after["recipients"] for k, e in events.items()} == {
        "reader": 2, "senior": 1, "rater": 2, "coordinator": 1}
    assert all(e.trial == world.trial and e.after["failed"] == 0 for e in events.values())


def test_a_dry_run_sends_and_records_nothing(world):
    summary = send_due(dry_run=True)
    assert len(summary.planned) == 6 and not summary.sent
    assert mail.outbox == []
    assert not Notification.objects.exists() and not NotificationPreference.objects.exists()
    assert not AuditEvent.objects.filter(action="notifications.sent").exists()
    assert len(send_due().sent) == 6  # and it did not count as a send


def test_the_command_prints_who_would_get_what_and_who_got_what(world):
    out = io.StringIO()
    call_command("send_notifications", "--dry-run", stdout=out)
    text = out.getvalue()
    assert mail.outbox == []
    assert text.startswith("Dry run: 6 e-mail(s) would be sent, none was.")
    scp = world.reader(Arm.SCP)
    assert f"{scp.get_username()} <{scp.email}>" in text
    assert f"[{world.trial.slug}, reader] 2 cases waiting in your worklist." in text
    assert f"[{world.trial.slug}, coordinator] 1 AI draft failed" in text
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    assert out.getvalue().startswith("Sent 6 e-mail(s).") and len(mail.outbox) == 6
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    assert out.getvalue().strip() == "Nothing is due."


def test_the_periodic_task_sends_what_is_due(world):
    assert tasks.send_notifications.apply().get()["sent"] == 6
    assert tasks.send_notifications.apply().get()["sent"] == 0


def test_nobody_with_nothing_waiting_gets_anything(tmp_path):
    """No endpoint: the AI-arm case waits for its draft (nothing to read), the SCP reading is
    submitted, the senior waits for the second reading, no draft failed, nothing overdue."""
    read = build_read_world(tmp_path, cases=1, endpoint=False)
    assignment = read.readers[Arm.SCP].assignments.get()
    opened = reading.open_reading(assignment, user=None)
    reading.submit(opened, findings="Clear lungs.", impression="Normal.",
                   version=opened.version)
    assert read.readers[Arm.AI_ASSISTED].assignments.count() == 1
    summary = send_due(timezone.now() + timedelta(days=5))
    assert mail.outbox == [] and not summary.planned and not summary.no_address


# --- the person's page and the admin ------------------------------------------------------------

def test_people_turn_their_emails_off_and_on_on_their_page(world, client):
    user = world.reader(Arm.SCP)
    assert client.get("/notifications/").status_code == 302  # sign in first
    client.force_login(user)
    home = client.get("/")
    assert 'href="/notifications/"' in home.content.decode()
    page = client.get("/notifications/").content.decode()
    assert 'name="email_enabled"' in page and "checked" in page and user.email in page
    response = client.post("/notifications/", {})
    assert response.status_code == 302 and response["Location"] == "/notifications/?saved=1"
    assert NotificationPreference.objects.get(user=user).email_enabled is False
    page = client.get("/notifications/?saved=1").content.decode()
    assert "Saved." in page and "checked" not in page
    send_due()
    assert user.email not in by_address()
    client.post("/notifications/", {"email_enabled": "on"})
    assert NotificationPreference.objects.get(user=user).email_enabled is True


def test_coordinators_edit_their_trials_settings_in_the_admin_only(world, client):
    coordinator = world.coordinator.user
    coordinator.is_staff = True
    coordinator.save(update_fields=["is_staff"])
    stranger = UserFactory(is_staff=True)
    other = TrialFactory()
    MembershipFactory(trial=other, user=stranger, role=Role.COORDINATOR)
    client.force_login(coordinator)
    add = client.post("/admin/notify/notificationsettings/add/", {
        "trial": world.trial.pk, "enabled": "", "interval_hours": "12"})
    assert add.status_code == 302, add.content.decode()[:2000]
    row = NotificationSettings.objects.get(trial=world.trial)
    assert (row.enabled, row.interval_hours) == (False, 12)
    assert AuditEvent.objects.filter(action="notificationsettings.created",
                                     trial=world.trial).exists()
    refused = client.post("/admin/notify/notificationsettings/add/", {
        "trial": other.pk, "enabled": "on", "interval_hours": "24"})
    assert refused.status_code == 200 and not NotificationSettings.objects.filter(
        trial=other).exists()
    # the opt-outs and the log are for superusers only
    assert client.get("/admin/notify/notificationpreference/").status_code == 403
    assert client.get("/admin/notify/notification/").status_code == 403
    client.force_login(stranger)
    assert client.get(f"/admin/notify/notificationsettings/{row.pk}/change/").status_code == 403
    listing = client.get("/admin/notify/notificationsettings/").content.decode()
    assert world.trial.name not in listing
    root = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(root)
    send_due()
    assert client.get("/admin/notify/notification/").status_code == 200
    assert client.get("/admin/notify/notificationpreference/").status_code == 200
