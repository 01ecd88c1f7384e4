"""The dashboard's numbers against the database after a simulated day of work: every count is
computed here again, case by case and person by person with plain ORM queries, and compared
with what ``monitor.dashboard.dashboard_data`` got from its aggregate queries.

The day: the demo trial (12 cases, 2 excluded at screening), three quarters of its cases
read, reviewed (half the reviews signed) and rated by the simulation; then a senior opens a
review, another signs one (its case added to the campaign, not yet rated), two readings are
opened (one two days ago, with a protocol deviation), a case's final report has been waiting
for five days, a draft fails, a draft is still queued, a case is screened and one is enrolled
and not assigned.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from demo.build import DEMO_SLUG, build_demo
from demo.simulate import simulate_trial
from drafting.models import Draft
from drafting.queries import active_endpoint
from monitor.dashboard import dashboard_data, failure_reason
from rating import build
from rating.models import Campaign, RaterItem, Rating
from reader import reading as rd
from reader import review as rv
from reader.models import Reading, Review
from trial.models import Arm, Assignment, Case, Membership, Role, Site, Trial

pytestmark = pytest.mark.django_db

SECRET = "Kestrel-echo of the model's reply"


def rows(data: dict, table: str) -> dict[str, list]:
    return {row["key"]: row["cells"] for row in data["tables"][table]["rows"]}


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker, tmp_path_factory):
    """The day, built once for the module in a transaction rolled back after it (each test
    runs in a savepoint of its own)."""
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock(), override_settings(
            MEDIA_ROOT=tmp_path_factory.mktemp("monitor-media"), PASSWORD_HASHERS=fast):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_day()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def day(shared, db) -> Trial:
    return shared


def build_day() -> Trial:
    # Enrolment queues each draft on commit, which this transaction never reaches: run them.
    with TestCase.captureOnCommitCallbacks(execute=True):
        build_demo(cases=10, excluded=2, seed=11)
    trial = Trial.objects.get(slug=DEMO_SLUG)
    simulate_trial(trial, seed=4, fraction=0.75, sign_fraction=0.5)
    now = timezone.now()

    ready = [case for case in Case.objects.filter(trial=trial).order_by("case_id")
             if Reading.objects.filter(assignment__case=case,
                                       status=Reading.Status.SUBMITTED).count() == 2
             and not Review.objects.filter(case=case).exists()]
    assert len(ready) >= 3, "the seed must leave three cases ready for a senior"
    senior = {m.site_id: m for m in Membership.objects.filter(trial=trial, role=Role.SENIOR)}
    rv.open_review(ready[0], senior=senior[ready[0].site_id])  # in review
    Reading.objects.filter(assignment__case=ready[1]).update(  # waiting five days, not opened
        submitted_at=now - timedelta(days=5))
    signed = rv.open_review(ready[2], senior=senior[ready[2].site_id])
    rv.sign(signed, findings="Final.", impression="Final.", version=signed.version,
            by=senior[ready[2].site_id].user, simulated=True)
    campaign = Campaign.objects.get(trial=trial)
    assert build.build(campaign) > 0  # the new case's items: given, not rated

    fresh = list(Assignment.objects.filter(case__trial=trial, reading__isnull=True)
                 .order_by("case__case_id", "arm"))
    old = rd.open_reading(next(a for a in fresh if a.arm == Arm.SCP), user=None)
    Reading.objects.filter(pk=old.pk).update(opened_at=now - timedelta(hours=49),
                                             deviation="Offered without its AI draft: test.")
    rd.open_reading(next(a for a in fresh if a.arm == Arm.AI_ASSISTED), user=None)

    unread = next(a.case for a in fresh if a.case_id != old.case.pk)
    endpoint = active_endpoint(trial)
    Draft.objects.filter(case=unread, fingerprint=endpoint.fingerprint).update(
        status=Draft.Status.FAILED, error=f"HTTP 503 from the model server: {SECRET}")
    Draft.objects.filter(case=old.case, fingerprint=endpoint.fingerprint).update(
        status=Draft.Status.QUEUED)
    site = Site.objects.filter(trial=trial).order_by("code").first()
    Case.objects.create(trial=trial, site=site, case_id="SCREENED-1")
    Case.objects.create(trial=trial, site=site, case_id="ENROLLED-1",
                        status=Case.Status.ENROLLED, enrolled_at=now)
    return trial


def expected(trial: Trial, now) -> dict:
    """The same numbers, counted one object at a time."""
    reading_cutoff, review_cutoff = now - timedelta(hours=24), now - timedelta(days=3)
    cases = list(Case.objects.filter(trial=trial))
    out: dict = {"numbers": {}, "sites": {}, "readers": {}, "seniors": {}, "ratings": {},
                 "waiting": {}}
    n = out["numbers"]
    n["cases.total"] = len(cases)
    for status in Case.Status.values:
        n[f"cases.{status}"] = sum(c.status == status for c in cases)
    unassigned = [c for c in cases if c.status == Case.Status.ENROLLED
                  and set(c.assignments.values_list("arm", flat=True)) != set(Arm.values)]
    n["cases.unassigned"] = len(unassigned)
    for site in Site.objects.filter(trial=trial):
        mine = [c for c in cases if c.site_id == site.pk]
        out["sites"][f"site-{site.pk}"] = [
            f"{site.code} – {site.name}", len(mine),
            *(sum(c.status == s for c in mine) for s in Case.Status.values),
            sum(c in unassigned for c in mine)]

    endpoint = active_endpoint(trial)
    enrolled = [c for c in cases if c.status == Case.Status.ENROLLED]
    for status in Draft.Status.values:
        n[f"drafts.{status}"] = Draft.objects.filter(
            case__in=enrolled, fingerprint=endpoint.fingerprint, status=status).count()
    n["drafts.missing"] = sum(not c.drafts.filter(fingerprint=endpoint.fingerprint).exists()
                              for c in enrolled)

    label = {arm: trial.arm_label(arm) for arm in Arm.values}
    for key in ("assigned", "open", "submitted", "overdue", "deviations"):
        n[f"readings.{key}"] = 0
    for reader in Membership.objects.filter(trial=trial, role=Role.READER):
        arm = reader.arm
        assigned = reader.assignments.count()
        readings = Reading.objects.filter(assignment__reader=reader)
        open_ = readings.filter(status=Reading.Status.OPEN)
        submitted = readings.filter(status=Reading.Status.SUBMITTED).count()
        overdue = open_.filter(opened_at__lt=reading_cutoff).count()
        deviations = readings.exclude(deviation="").count()
        out["readers"][f"r-{reader.pk}-{arm}"] = [
            reader.user.username, label[arm], assigned, assigned - open_.count() - submitted,
            open_.count(), submitted, overdue, deviations]
        for key, value in (("assigned", assigned), ("open", open_.count()),
                           ("submitted", submitted), ("overdue", overdue),
                           ("deviations", deviations)):
            n[f"readings.{key}"] += value

    ready_at = {}
    for case in cases:
        submitted = Reading.objects.filter(assignment__case=case,
                                           status=Reading.Status.SUBMITTED)
        if submitted.count() == 2:
            ready_at[case.pk] = max(r.submitted_at for r in submitted)
    reviews = {r.case_id: r for r in Review.objects.filter(case__trial=trial)}
    waiting = {pk: at for pk, at in ready_at.items()
               if pk not in reviews or reviews[pk].status != Review.Status.SIGNED}
    unopened = [pk for pk in waiting if pk not in reviews]
    site_of = {c.pk: c.site_id for c in cases}
    n["reviews.signed"] = sum(r.status == Review.Status.SIGNED for r in reviews.values())
    n["reviews.waiting"] = len(waiting)
    n["reviews.in_review"] = len(waiting) - len(unopened)
    n["reviews.ready"] = len(unopened)
    n["reviews.overdue"] = sum(at < review_cutoff for at in waiting.values())
    for senior in Membership.objects.filter(trial=trial, role=Role.SENIOR):
        mine = [pk for pk in waiting if pk in reviews and reviews[pk].senior_id == senior.pk]
        out["seniors"][f"s-{senior.pk}"] = [
            senior.user.username, senior.site.code,
            sum(site_of[pk] == senior.site_id for pk in unopened), len(mine),
            sum(waiting[pk] < review_cutoff for pk in mine),
            sum(r.senior_id == senior.pk and r.status == Review.Status.SIGNED
                for r in reviews.values())]
    for site in Site.objects.filter(trial=trial):
        here = [pk for pk in unopened if site_of[pk] == site.pk]
        out["waiting"][f"w-{site.pk}"] = [
            site.code, len(here), sum(waiting[pk] < review_cutoff for pk in here),
            sum(site_of[pk] == site.pk for pk in waiting if pk in reviews),
            Membership.objects.filter(trial=trial, role=Role.SENIOR, site=site).count()]

    n["ratings.given"] = n["ratings.submitted"] = 0
    for campaign in Campaign.objects.filter(trial=trial):
        for rater in campaign.raters.all():
            given = RaterItem.objects.filter(campaign=campaign, rater=rater).count()
            done = Rating.objects.filter(rater_item__campaign=campaign,
                                         rater_item__rater=rater).count()
            out["ratings"][f"c-{campaign.pk}-{rater.pk}"] = [
                campaign.name, campaign.get_status_display(), rater.user.username, given, done,
                given - done]
            n["ratings.given"] += given
            n["ratings.submitted"] += done
    return out


def test_the_numbers_are_the_databases_after_a_simulated_day(day) -> None:
    now = timezone.now()
    data = dashboard_data(day, now=now)
    want = expected(day, now)

    for key, value in want["numbers"].items():
        assert data["numbers"][key] == value, key
    # The day's events are all visible (the world is what the docstring says).
    n = data["numbers"]
    assert n["cases.screened"] == 1 and n["cases.excluded"] == 2 and n["cases.unassigned"] == 1
    assert n["drafts.failed"] == 1 and n["drafts.queued"] == 1 and n["drafts.missing"] == 1
    assert n["readings.open"] == 2 and n["readings.overdue"] == 1
    assert n["readings.deviations"] == 1
    assert n["reviews.in_review"] == 1 and n["reviews.overdue"] == 1
    assert 0 < n["ratings.submitted"] < n["ratings.given"]

    for table in ("sites", "readers", "seniors", "waiting", "ratings"):
        assert rows(data, table) == want[table], table
    arms = rows(data, "arms")
    for arm in Arm.values:
        mine = [cells for key, cells in want["readers"].items() if key.endswith(f"-{arm}")]
        assert arms[f"a-{arm}"][1:] == [sum(c[i] for c in mine) for i in range(2, 8)]
    assert list(rows(data, "deviations").values()) == [
        [day.scp_label, "Offered without its AI draft: test.", 1]]
    assert list(rows(data, "failures").values()) == [["HTTP 503 from the model server", 1]]


def test_the_enrolment_curve_adds_up_to_the_cases(day) -> None:
    data = dashboard_data(day)
    periods = rows(data, "periods")
    sites = list(Site.objects.filter(trial=day).order_by("code"))
    for i, site in enumerate(sites):
        screened = sum(cells[1 + 2 * i] for cells in periods.values())
        enrolled = sum(cells[2 + 2 * i] for cells in periods.values())
        assert screened == Case.objects.filter(site=site).count()
        assert enrolled == Case.objects.filter(site=site, enrolled_at__isnull=False).count()
    curve = data["figures"]["enrolment"]
    assert curve["unit"] == "day"
    assert curve["svg"].startswith("<svg") and 'role="img"' in curve["svg"]
    for site in sites:
        n = Case.objects.filter(site=site, enrolled_at__isnull=False).count()
        assert f"{site.code} {n} enrolled" in curve["text"]
    completion = data["figures"]["completion"]
    total = data["numbers"]["readings.submitted"]
    assert "<title" in completion["svg"] and "<desc" in completion["svg"]
    assert sum(int(part.split(" submitted")[0].rsplit(" ", 1)[-1])
               for part in completion["text"].split(";") if "Readings" in part) == total


def test_nothing_shown_is_a_report_text_or_a_drafts_error(day) -> None:
    data = str(dashboard_data(day))
    assert SECRET not in data
    for reading in Reading.objects.filter(assignment__case__trial=day).exclude(findings=""):
        assert reading.findings not in data
    for draft in Draft.objects.filter(case__trial=day, status=Draft.Status.DONE)[:5]:
        assert draft.findings not in data


def test_a_handful_of_queries_whatever_the_size(day) -> None:
    with CaptureQueriesContext(connection) as first:
        dashboard_data(day)
    # Many more cases, readings and drafts: not one query more.
    site = Site.objects.filter(trial=day).first()
    Case.objects.bulk_create([Case(trial=day, site=site, case_id=f"MORE-{i}",
                                   status=Case.Status.ENROLLED, enrolled_at=timezone.now())
                              for i in range(50)])
    with CaptureQueriesContext(connection) as second:
        dashboard_data(day)
    assert len(second) == len(first) <= 15


@pytest.mark.parametrize(("error", "reason"), [
    ("HTTP 500 from the model server: {\"detail\": \"FINDINGS: secret\"}",
     "HTTP 500 from the model server"),
    ("Gave up after 5 attempts; last error: No reply within 60 s (ReadTimeout).",
     "No reply from the model server in time (after every retry)"),
    ("Cannot reach http://gpu:8000/v1: ConnectError: refused", "Model server unreachable"),
    ("The reply is not a chat completion (no choices[0].message.content): 'FINDINGS: x'",
     "Unusable reply from the model server"),
    ("The model returned an empty report.", "Empty report from the model"),
    ("Something nobody foresaw: FINDINGS: y", "Other error (see the draft list in the admin)"),
])
def test_failures_are_grouped_by_category_never_by_text(error, reason) -> None:
    assert failure_reason(error) == reason


@pytest.mark.parametrize(("zone", "want"), [
    ("UTC", {(1, "2026-03-28"): 3, (1, "2026-03-29"): 6, (2, "2026-03-29"): 2}),
    # Paris: UTC+1 until 29 March 2026 01:00 UTC, then UTC+2 (22:00 UTC is next day's 00:00).
    ("Europe/Paris", {(1, "2026-03-28"): 1, (1, "2026-03-29"): 8, (2, "2026-03-29"): 1,
                      (2, "2026-03-30"): 1}),
])
def test_utc_hours_are_summed_into_local_days(settings, zone, want) -> None:
    """SQLite's path of the enrolment curve: counts per UTC hour become counts per local day
    (the test database is PostgreSQL, which truncates in SQL; this checks the conversion)."""
    from datetime import date

    from monitor.dashboard import local_days

    settings.TIME_ZONE = zone
    hours = [(1, "2026-03-28 21", 1), (1, "2026-03-28 23", 2), (1, "2026-03-29 00", 4),
             (1, "2026-03-29 21", 2), (2, "2026-03-29 12", 1), (2, "2026-03-29 22", 1)]
    got = {(row["site_id"], row["day"]): row["n"] for row in local_days(hours)}
    assert got == {(site, date.fromisoformat(day)): n for (site, day), n in want.items()}
