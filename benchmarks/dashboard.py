"""Benchmark of the trial dashboard (``monitor``) on a trial with 10,000 cases.

    .venv/bin/python benchmarks/dashboard.py [--cases 10000] [--repeat 3]
                                             [--database-url postgresql://user@host:port/db]

Builds the trial with ``bulk_create`` in a fresh, temporary SQLite database (migrated here),
and, with ``--database-url``, again in a scratch database made on that PostgreSQL server
(``CREATE DATABASE``, dropped afterwards: the URL's user needs CREATEDB). Realistic
proportions: 3 sites, 12 readers (6 per arm), 3 seniors, 5 raters; of the cases 93% enrolled
(1% of them not assigned yet), 3% excluded, 2% withdrawn, 2% still screened, screened and
enrolled over 120 days; an AI draft for nearly every enrolled case (1% failed, 1% queued,
0.5% running, 0.5% none); both readings submitted for 75% of the assigned cases, one of two
for 10%, both open for 5%; 80% of the ready cases signed, 5% in review; one prospective
campaign with 3 items per signed case and 2 raters per item, 70% rated; 1% of the readings
with a protocol deviation; some readings and reviews overdue.

Then, best of ``--repeat`` after one warm-up each:

* ``dashboard_data`` (the numbers of the page and its JSON), and its SQL queries;
* the JSON endpoint and the page through Django's test client (session, middleware, access
  check, JSON or template), as a coordinator;
* baselines measured in the same run: a bare ``count()`` of each table the dashboard reads
  (cases, assignments, readings, reviews, drafts, rater items, ratings: the least a
  dashboard must touch), and the admin's trial page (what a coordinator opens today);

and prints the times, the queries, the ratios against the baselines and the 300 ms goal for
the JSON. Two-factor sign-in is off for the run (the client signs in with ``force_login``);
``DEBUG`` is off, as in production. On PostgreSQL the tables are analysed after the load (as
autovacuum would), so the planner has statistics.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_MS = 300.0
ERRORS = (
    "HTTP 503 from the model server: upstream busy",
    "Gave up after 5 attempts; last error: No reply within 60 s (ReadTimeout).",
    "The model returned an empty report.",
    "Cannot reach http://gpu:8000/v1: ConnectError: [Errno 111] Connection refused",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="Cases (10000).")
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs, best kept (3).")
    parser.add_argument("--database-url", help="Also on this PostgreSQL server (scratch DB).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the world -------------------------------------------------------------------------------

def build(n_cases: int):  # noqa: C901 - one straight recipe
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from drafting.models import Draft, ModelEndpoint
    from rating.models import Campaign, Item, RatedReport, RaterItem, Rating
    from reader.models import Reading, Review
    from trial.models import (
        AllocationSlot,
        Arm,
        Assignment,
        Case,
        Membership,
        RandomizationList,
        Role,
        Site,
        Trial,
    )

    rng = np.random.default_rng(2025)
    now = timezone.now()
    start = now - timedelta(days=120)
    User = get_user_model()
    trial = Trial.objects.create(name="Benchmark trial", slug="bench", status="reading",
                                 block_sizes=[2])
    sites = [Site.objects.create(trial=trial, code=f"H{i}", name=f"Hospital {i}")
             for i in range(1, 4)]
    users = User.objects.bulk_create([User(username=name) for name in (
        ["coordinator", "statistician"] + [f"reader{i}" for i in range(1, 13)]
        + [f"senior{i}" for i in range(1, 4)] + [f"rater{i}" for i in range(1, 6)])])
    by_name = {u.username: u for u in users}
    coordinator = Membership.objects.create(trial=trial, user=by_name["coordinator"],
                                            role=Role.COORDINATOR, site=sites[0])
    Membership.objects.create(trial=trial, user=by_name["statistician"],
                              role=Role.STATISTICIAN)
    readers = Membership.objects.bulk_create([
        Membership(trial=trial, user=by_name[f"reader{i}"], role=Role.READER,
                   site=sites[(i - 1) % 3]) for i in range(1, 13)])
    seniors = Membership.objects.bulk_create([
        Membership(trial=trial, user=by_name[f"senior{i}"], role=Role.SENIOR,
                   site=sites[i - 1]) for i in range(1, 4)])
    raters = Membership.objects.bulk_create([
        Membership(trial=trial, user=by_name[f"rater{i}"], role=Role.RATER)
        for i in range(1, 6)])
    rlist = RandomizationList.objects.create(trial=trial, method="generated", seed=1,
                                             commitment="0" * 64,
                                             created_by=coordinator.user)
    arm_of = {r.pk: (Arm.AI_ASSISTED if i % 2 == 0 else Arm.SCP) for i, r in enumerate(readers)}
    AllocationSlot.objects.bulk_create([
        AllocationSlot(randomization=rlist, position=i + 1, block=i // 2 + 1, block_size=2,
                       arm=arm_of[r.pk], membership=r, allocated_at=now)
        for i, r in enumerate(readers)])
    endpoint = ModelEndpoint.objects.create(trial=trial, name="bench",
                                            backend=ModelEndpoint.Backend.DEMO)

    # Cases: statuses, sites, screening and enrolment days over 120 days.
    status = rng.choice(["enrolled", "excluded", "withdrawn", "screened"], size=n_cases,
                        p=[0.93, 0.03, 0.02, 0.02])
    day = np.sort(rng.integers(0, 120, size=n_cases))
    cases = Case.objects.bulk_create([
        Case(trial=trial, site=sites[i % 3], case_id=f"C{i:06d}", status=str(status[i]),
             enrolled_at=(start + timedelta(days=int(day[i]) + 1)
                          if status[i] in ("enrolled", "withdrawn") else None))
        for i in range(n_cases)], batch_size=2000)
    for d in range(120):  # created_at is auto_now_add: set the screening days afterwards
        Case.objects.filter(trial=trial, case_id__in=[c.case_id for c, k in zip(
            cases, day, strict=True) if k == d]).update(created_at=start + timedelta(days=d))
    enrolled = [c for c, s in zip(cases, status, strict=True) if s == "enrolled"]

    # Drafts of the enrolled cases.
    kind = rng.choice(["done", "failed", "queued", "running", "none"], size=len(enrolled),
                      p=[0.97, 0.01, 0.01, 0.005, 0.005])
    config = endpoint.config()
    drafts = Draft.objects.bulk_create([
        Draft(case=c, endpoint=endpoint, fingerprint=endpoint.fingerprint, config=config,
              backend=endpoint.backend, status=str(k), queued_at=now,
              findings="Clear lungs." if k == "done" else "",
              error=ERRORS[i % len(ERRORS)] if k == "failed" else "")
        for i, (c, k) in enumerate(zip(enrolled, kind, strict=True)) if k != "none"],
        batch_size=2000)
    draft_of = {d.case_id: d for d in drafts}

    # Assignments: each enrolled case but 1% to a reader of each arm, balanced.
    assigned = enrolled[: int(len(enrolled) * 0.99)]
    by_arm = {arm: [r for r in readers if arm_of[r.pk] == arm] for arm in Arm.values}
    position = {r.pk: 0 for r in readers}
    rows = []
    for i, case in enumerate(assigned):
        for arm in Arm.values:
            reader = by_arm[arm][i % len(by_arm[arm])]
            position[reader.pk] += 1
            rows.append(Assignment(case=case, reader=reader, arm=arm,
                                   position=position[reader.pk]))
    assignments = Assignment.objects.bulk_create(rows, batch_size=4000)
    pairs = {}
    for a in assignments:
        pairs.setdefault(a.case_id, {})[a.arm] = a

    # Readings: both submitted 75%, one of two 10%, both open 5%, none 10%.
    state = rng.choice(["both", "one", "open", "none"], size=len(assigned),
                       p=[0.75, 0.10, 0.05, 0.10])
    readings, ready = [], []
    for i, (case, s) in enumerate(zip(assigned, state, strict=True)):
        if s == "none":
            continue
        opened = now - timedelta(hours=float(rng.uniform(1, 72)))
        for arm, a in pairs[case.pk].items():
            done = s == "both" or (s == "one" and arm == Arm.AI_ASSISTED)
            readings.append(Reading(
                assignment=a, status="submitted" if done else "open",
                findings="Clear.", impression="Normal.",
                started_from="draft" if arm == Arm.AI_ASSISTED else "template",
                draft=draft_of.get(case.pk) if arm == Arm.AI_ASSISTED else None,
                deviation="Offered without its AI draft: The AI draft is queued."
                if i % 100 == 7 else "",
                opened_at=opened, last_event_at=opened,
                submitted_at=opened + timedelta(minutes=3) if done else None))
        if s == "both":
            ready.append(case)
    Reading.objects.bulk_create(readings, batch_size=4000)

    # Reviews: 80% of the ready cases signed, 5% in review.
    review_state = rng.choice(["signed", "open", "none"], size=len(ready), p=[0.8, 0.05, 0.15])
    senior_of = {s.site_id: s for s in seniors}
    reviews = Review.objects.bulk_create([
        Review(case=c, senior=senior_of[c.site_id], order=[], status=str(k),
               opened_at=now - timedelta(days=2), findings="Final.", impression="Final.",
               signed_at=now if k == "signed" else None)
        for c, k in zip(ready, review_state, strict=True) if k != "none"], batch_size=4000)
    signed = [r.case for r in reviews if r.status == "signed"]

    # One campaign: per signed case two single items and one pair, two raters per item.
    campaign = Campaign.objects.create(trial=trial, name="Prospective quality",
                                       instruments=["likert", "preference"], status="open",
                                       raters_per_item=2)
    campaign.raters.set(raters)
    reports = RatedReport.objects.bulk_create([
        RatedReport(campaign=campaign, case=c, source=arm, findings="x", impression="y",
                    shown_findings="x", shown_impression="y")
        for c in signed for arm in Arm.values], batch_size=4000)
    report_of = {(r.case_id, r.source): r for r in reports}
    items = Item.objects.bulk_create([
        Item(campaign=campaign, case=c, kind=kind, report=report_of[(c.pk, source)],
             other=report_of[(c.pk, Arm.SCP)] if kind == "pair" else None)
        for c in signed for kind, source in (("single", Arm.AI_ASSISTED),
                                             ("single", Arm.SCP), ("pair", Arm.AI_ASSISTED))],
        batch_size=4000)
    places = {r.pk: 0 for r in raters}
    rater_items = []
    for i, item in enumerate(items):
        for rater in (raters[i % 5], raters[(i + 1) % 5]):
            places[rater.pk] += 1
            rater_items.append(RaterItem(campaign=campaign, item=item, rater=rater,
                                         position=places[rater.pk]))
    rater_items = RaterItem.objects.bulk_create(rater_items, batch_size=4000)
    rated = rng.random(len(rater_items)) < 0.7
    Rating.objects.bulk_create([
        Rating(rater_item=ri, values={"likert": "4"}, seconds=30.0, submitted_at=now)
        for ri, r in zip(rater_items, rated, strict=True) if r], batch_size=4000)
    counts = {"cases": len(cases), "drafts": len(drafts), "assignments": len(assignments),
              "readings": len(readings), "reviews": len(reviews),
              "rater items": len(rater_items), "ratings": int(rated.sum())}
    return trial, coordinator.user, counts


# --- timing ----------------------------------------------------------------------------------

def best(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def run_child(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import clear_url_caches

    from drafting.models import Draft
    from monitor.dashboard import dashboard_data
    from rating.models import RaterItem, Rating
    from reader.models import Reading, Review
    from trial.models import Assignment, Case

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.TWO_FACTOR_ENFORCED = False
    settings.ROOT_URLCONF = "tests.monitor.urls"  # the site's URLs, the dashboard mounted
    clear_url_caches()
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter()
    trial, coordinator, counts = build(args.cases)
    vendor = connection.vendor
    if vendor == "postgresql":  # as autovacuum would after such a load: the planner's statistics
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    built = time.perf_counter()
    print(f"\n== {args.label} ({vendor}) ==")
    print(f"migrated in {migrated - started:.1f} s, built in {built - migrated:.1f} s: "
          + ", ".join(f"{n:,} {k}" for k, n in counts.items()))

    with CaptureQueriesContext(connection) as queries:
        data = dashboard_data(trial)
    data_queries = len(queries)  # now: each request of the client below clears the log
    n = data["numbers"]
    print(f"dashboard: {n['cases.enrolled']:,} enrolled, {n['readings.submitted']:,} readings "
          f"submitted, {n['readings.overdue']} overdue, {n['drafts.failed']} drafts failed, "
          f"{n['reviews.waiting']} cases waiting for a senior, {n['ratings.submitted']:,} of "
          f"{n['ratings.given']:,} ratings; {len(data['actions'])} next actions")

    tables = (Case.objects.filter(trial=trial), Assignment.objects.filter(case__trial=trial),
              Reading.objects.filter(assignment__case__trial=trial),
              Review.objects.filter(case__trial=trial), Draft.objects.filter(case__trial=trial),
              RaterItem.objects.filter(campaign__trial=trial),
              Rating.objects.filter(rater_item__campaign__trial=trial))
    client = Client()
    client.force_login(coordinator)
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "r@example.org", "x"))
    urls = {"json": f"/monitor/{trial.slug}/data.json", "page": f"/monitor/{trial.slug}/",
            "admin": f"/admin/trial/trial/{trial.pk}/change/"}
    sizes = {}
    for name, (c, url) in {"json": (client, urls["json"]), "page": (client, urls["page"]),
                           "admin": (admin, urls["admin"])}.items():
        response = c.get(url, secure=True)
        assert response.status_code == 200, f"{name}: HTTP {response.status_code}"
        sizes[name] = len(response.content)
    print(f"sizes: JSON {sizes['json'] / 1024:.0f} kB, page {sizes['page'] / 1024:.0f} kB, "
          f"admin trial page {sizes['admin'] / 1024:.0f} kB")

    def get(c, url):
        return lambda: c.get(url, secure=True, HTTP_X_BACKGROUND="1")

    def count_tables():
        for qs in tables:
            qs.count()

    rows = [
        ("dashboard_data (the numbers)", best(lambda: dashboard_data(trial), args.repeat),
         data_queries),
        ("JSON endpoint (test client)", best(get(client, urls["json"]), args.repeat), None),
        ("dashboard page (test client)", best(get(client, urls["page"]), args.repeat), None),
        ("baseline: bare count() x 7 tables", best(count_tables, args.repeat), len(tables)),
        ("baseline: admin trial page", best(get(admin, urls["admin"]), args.repeat), None),
    ]
    with CaptureQueriesContext(connection) as page_queries:
        client.get(urls["json"], secure=True)
    rows[1] = (*rows[1][:2], len(page_queries))
    with CaptureQueriesContext(connection) as page_queries:
        client.get(urls["page"], secure=True)
    rows[2] = (*rows[2][:2], len(page_queries))
    with CaptureQueriesContext(connection) as page_queries:
        admin.get(urls["admin"], secure=True)
    rows[4] = (*rows[4][:2], len(page_queries))

    print(f"best of {args.repeat} (after a warm-up):")
    print(f"  {'':36} {'ms':>9} {'queries':>8}")
    for label, ms, q in rows:
        print(f"  {label:36} {ms:9.1f} {q if q is not None else '':>8}")
    data_ms, json_ms, page_ms, counts_ms, admin_ms = (r[1] for r in rows)
    print(f"ratio dashboard_data / bare counts: {data_ms / counts_ms:.2f}")
    print(f"ratio JSON endpoint / admin trial page: {json_ms / admin_ms:.2f}")
    print(f"ratio dashboard page / admin trial page: {page_ms / admin_ms:.2f}")
    print(f"goal: JSON under {GOAL_MS:.0f} ms at {args.cases:,} cases: "
          f"{'met' if json_ms < GOAL_MS else 'NOT met'} ({json_ms:.1f} ms)")


def child(args: argparse.Namespace, label: str, database_url: str, data_dir: str) -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEMO_MODE": "1",
           "DEBUG": "0",  # as in production: no query log, no debug pages
           "DATA_DIR": data_dir, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
           "DATABASE_CONN_MAX_AGE": "0"}
    cmd = [sys.executable, __file__, "--child", "--cases", str(args.cases), "--repeat",
           str(args.repeat), "--label", label]
    return subprocess.call(cmd, env=env, cwd=ROOT)


def main() -> int:
    args = parse_args()
    if args.child:
        run_child(args)
        return 0
    print(f"Trial dashboard benchmark: {args.cases:,} cases, best of {args.repeat}; load "
          f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="cxr-bench-dashboard-") as tmp:
        failed |= child(args, "SQLite, temporary file", f"sqlite:///{tmp}/bench.sqlite3", tmp)
        if args.database_url:
            import psycopg

            name = f"cxr_bench_dashboard_{os.getpid()}"
            parts = urlsplit(args.database_url)
            scratch = urlunsplit(parts._replace(path=f"/{name}"))
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                failed |= child(args, f"PostgreSQL, scratch database {name}", scratch, tmp)
            finally:
                with psycopg.connect(args.database_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return failed


if __name__ == "__main__":
    sys.exit(main())
