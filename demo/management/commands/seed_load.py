"""``manage.py seed_load``: the trial a load test runs against (``benchmarks/load.py``), and
afterwards the check that no autosave was lost.

Build (the default): a trial sized for ``--minutes`` of work by ``--readers`` readers,
``--seniors`` seniors, ``--raters`` raters and ``--coordinators`` coordinators (``--scale``
multiplies the four), every account with the password ``--password``, and prints (or writes to
``--out``) a JSON description: the trial, the campaign, the accounts and, for each
coordinator, the key of the authenticator (TOTP) it signs in with.

* every reader has ``--cases-per-reader`` cases to read (their AI drafts done, from the demo
  backend), in a worklist of their own;
* every senior (one per site) has ``--reviews-per-senior`` cases ready to finalise (both
  readings submitted);
* an open rating campaign with every instrument (Likert, RADPEER, acceptability, errors,
  preference, source identification; the AI draft as a third source), two raters per item,
  about ``--items-per-rater`` items per rater.

Readers, assignments, allocation, readings, reviews and the campaign go through the real
services (``generate_list``, ``allocate_all``, ``assign_cases``, ``reader.reading``,
``reader.review``, ``rating.build``); the cases, their AI drafts and most of their images are
made with ``bulk_create``: ``--images`` distinct synthetic radiographs are imported (the real
import, which makes the viewer's files) and the other cases' images are rows pointing at the
same files (their viewer files are content-addressed, so shared). The readings, reviews and
campaign items made beforehand belong to two "past" readers, so the load readers' worklists
hold only unread cases.

Check (``--check FILE``, ``-`` for standard input): FILE is JSON, a list of what the load
test's users last saved, ``{"kind": "reading", "user": ..., "position": ...}`` or ``{"kind":
"review", "user": ..., "case": ...}`` with ``"acked"`` (the last text the server acknowledged,
``{"findings": ..., "impression": ...}``) and ``"pending"`` (a save sent but not answered when
the test stopped, or null). Prints JSON: how many stored texts equal the last acknowledged one,
how many equal the pending one, and every one that equals neither (a lost autosave); exits
non-zero if any was lost.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.devices import AUTHENTICATOR
from demo.cases import demo_records
from demo.guard import add_throwaway, refuse_outside_demo
from demo.reports import edit_draft, scp_report
from drafting.backends import write_report
from drafting.models import Draft, ModelEndpoint
from rating import build as rating_build
from rating import instruments as inst
from rating.lifecycle import set_status as set_campaign_status
from rating.models import Campaign
from reader import reading, review
from reader.models import Reading, ReadingEvent, Review
from trial import lifecycle
from trial.assignment import assign_cases
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.management.base import ServiceCommand
from trial.models import Arm, Assignment, Case, Image, Membership, Role, Site, Trial
from trial.randomization import allocate_all, generate_list

# A PA film's size, as the demo's (demo.build): 12 bits stored in 16.
IMAGE_ROWS, IMAGE_COLUMNS, BITS_STORED = 1792, 1472, 12
ITEMS_PER_CASE = 5  # with the AI draft as a source: 3 single items and 2 pairs per case
RATERS_PER_ITEM = 2


def totp_key(slug: str, username: str) -> str:
    """The coordinator's authenticator key (40 hex digits), derived so the load test can
    compute its codes; a load trial's accounts are synthetic."""
    return hashlib.sha1(f"cxr-load:{slug}:{username}".encode()).hexdigest()


class Command(ServiceCommand):
    help = ("Build a trial for a load test (readers, seniors, raters, coordinators with known "
            "passwords) and print its accounts as JSON; or, with --check, compare the stored "
            "texts with what a load test last saved.")

    def add_arguments(self, parser: CommandParser) -> None:
        add_throwaway(parser)
        parser.add_argument("--check", metavar="FILE",
                            help="Check the stored texts against FILE (JSON; - for stdin).")
        parser.add_argument("--slug", help="The trial's slug (default: load-<time>).")
        parser.add_argument("--scale", type=int, default=1,
                            help="Multiply readers, seniors, raters and coordinators (1).")
        parser.add_argument("--readers", type=int, default=50, help="Readers (50).")
        parser.add_argument("--seniors", type=int, default=3, help="Seniors, one site each (3).")
        parser.add_argument("--raters", type=int, default=10, help="Raters (10).")
        parser.add_argument("--coordinators", type=int, default=2, help="Coordinators (2).")
        parser.add_argument("--minutes", type=float, default=10.0,
                            help="How long the load test runs: sizes the work below (10).")
        parser.add_argument("--cases-per-reader", type=int,
                            help="Unread cases per reader (default: minutes + 3, a case a "
                                 "minute at the fastest).")
        parser.add_argument("--reviews-per-senior", type=int,
                            help="Cases ready for each senior (default: minutes + 3).")
        parser.add_argument("--items-per-rater", type=int,
                            help="Rating items per rater (default: 3 a minute + 5).")
        parser.add_argument("--images", type=int, default=8,
                            help="Distinct synthetic radiographs imported (8).")
        parser.add_argument("--image-size", type=int, nargs=2, metavar=("ROWS", "COLUMNS"),
                            default=(IMAGE_ROWS, IMAGE_COLUMNS),
                            help=f"Radiograph size ({IMAGE_ROWS} {IMAGE_COLUMNS}).")
        parser.add_argument("--password", default="load-test-password",
                            help="Every account's password (load-test-password).")
        parser.add_argument("--seed", type=int, default=2025, help="Seed of the texts (2025).")
        parser.add_argument("--out", help="Write the JSON here instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            self._check(options["check"])
            return
        refuse_outside_demo("seed_load", options,
                            what="makes accounts with known passwords, coordinators among them")
        scale = options["scale"]
        if scale < 1:
            raise CommandError("--scale must be at least 1.")
        minutes = options["minutes"]
        size = {
            "readers": options["readers"] * scale, "seniors": options["seniors"] * scale,
            "raters": options["raters"] * scale,
            "coordinators": options["coordinators"] * scale,
            "cases_per_reader": options["cases_per_reader"] or math.ceil(minutes) + 3,
            "reviews_per_senior": options["reviews_per_senior"] or math.ceil(minutes) + 3,
            "items_per_rater": options["items_per_rater"] or math.ceil(3 * minutes) + 5,
        }
        if size["readers"] < 2 or size["readers"] % 2:
            raise CommandError("--readers x --scale must be even (one per arm in each block).")
        if min(size["seniors"], size["coordinators"], options["images"]) < 1:
            raise CommandError("At least one senior, one coordinator and one image.")
        if size["raters"] and size["raters"] < 2 * RATERS_PER_ITEM:
            raise CommandError(f"Raters: none, or at least {2 * RATERS_PER_ITEM}.")
        slug = options["slug"] or f"load-{time.strftime('%Y%m%d-%H%M%S')}"
        if Trial.objects.filter(slug=slug).exists():
            raise CommandError(f"A trial '{slug}' exists already: give another --slug.")
        started = time.perf_counter()
        builder = LoadTrial(slug=slug, password=options["password"], seed=options["seed"],
                            images=options["images"], image_size=tuple(options["image_size"]),
                            log=lambda text: self.stderr.write(text), **size)
        result = builder.build()
        result["seconds"] = round(time.perf_counter() - started, 1)
        text = json.dumps(result, indent=1)
        if options["out"]:
            Path(options["out"]).write_text(text + "\n")
            self.stderr.write(f"Load trial '{slug}' built in {result['seconds']} s; accounts "
                              f"in {options['out']}.")
        else:
            self.stdout.write(text)

    def _check(self, source: str) -> None:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        result = check_saved(json.loads(text))
        self.stdout.write(json.dumps(result, indent=1))
        if result["lost"]:
            raise CommandError(f"{len(result['lost'])} stored text(s) differ from the last "
                               "one saved: autosaves were lost.")


class LoadTrial:
    """Builds the load test's trial (see the module's docstring)."""

    def __init__(self, *, slug: str, readers: int, seniors: int, raters: int,
                 coordinators: int, cases_per_reader: int, reviews_per_senior: int,
                 items_per_rater: int, images: int, image_size: tuple[int, int],
                 password: str, seed: int, log: Any) -> None:
        self.slug, self.password, self.log = slug, password, log
        self.n_readers, self.n_seniors, self.n_raters = readers, seniors, raters
        self.n_coordinators = coordinators
        self.cases_per_reader = cases_per_reader
        self.n_ready = reviews_per_senior * seniors
        self.n_signed = math.ceil(items_per_rater * raters / (ITEMS_PER_CASE * RATERS_PER_ITEM))
        self.n_unread = readers * cases_per_reader // 2
        self.n_images, self.image_size = images, image_size
        self.rng = np.random.default_rng(seed)
        self.records = demo_records(self.n_unread + self.n_ready + self.n_signed, seed=seed)
        self.next_record = 0
        self.templates: list[Image] = []

    # --- people ---------------------------------------------------------------------------

    def _users(self, names: list[str], *, staff: bool = False) -> list[Any]:
        user_model = get_user_model()
        return user_model.objects.bulk_create([
            user_model(username=name, email=f"{name}@load.invalid", is_staff=staff,
                       password=self.hashed) for name in names])

    def _members(self, role: str, names: list[str], sites: list[Site | None],
                 *, staff: bool = False) -> list[Membership]:
        users = self._users(names, staff=staff)
        return [Membership.objects.create(trial=self.trial, user=user, role=role, site=site,
                                          years_experience=5)
                for user, site in zip(users, sites, strict=True)]

    # --- cases ----------------------------------------------------------------------------

    def _template_images(self) -> None:
        """``n_images`` synthetic studies through the real import (viewer files made)."""
        rows, columns = self.image_size
        count = min(self.n_images, len(self.records))
        with tempfile.TemporaryDirectory(prefix="cxr-load-") as tmp:
            for n in range(count):
                record = self.records[n]
                make_cxr(Path(tmp) / f"study{n:03d}.dcm", seed=n + 1, rows=rows,
                         columns=columns, bits=BITS_STORED, patient_id=f"LOAD{n:06d}",
                         patient_name=f"Synthetic^Load{n}", accession=f"LOADACC{n:05d}",
                         age=record.age, sex=record.sex, findings=record.truth.findings)
            job = import_path(tmp, trial=self.trial, site=self.sites[0], by=self.by)
        if job.imported != count:
            raise CommandError(f"The synthetic images were not all imported: {job.report}")
        self.templates = list(Image.objects.filter(case__trial=self.trial).order_by("pk"))
        self.template_cases = list(Case.objects.filter(trial=self.trial).order_by("pk"))

    def _cases(self, sites: list[Site]) -> list[Case]:
        """Enrolled cases at ``sites`` (one each), with a history, an image and a done AI
        draft. The imported template cases are used first, then new rows whose image rows
        point at the templates' files."""
        now = timezone.now()
        made: list[Case] = []
        new: list[Case] = []
        for site in sites:
            record = self.records[self.next_record]
            fields = {"age": record.age, "sex": record.sex,
                      "chief_complaint": record.chief_complaint, "history": record.history,
                      "lab_results": record.lab_results, "prior_imaging": record.prior_imaging,
                      "status": Case.Status.ENROLLED, "enrolled_at": now, "site": site,
                      "eligibility_answers": {}, "consent_recorded_at": now,
                      "consent_recorded_by": self.by}
            if self.template_cases:
                case = self.template_cases.pop(0)
                for name, value in fields.items():
                    setattr(case, name, value)
                case.save()
                made.append(case)
            else:
                new.append(Case(trial=self.trial, case_id=f"L{self.next_record + 1:05d}",
                                **fields))
            self.next_record += 1
        new = Case.objects.bulk_create(new, batch_size=1000)
        images = []
        for case in new:
            template = self.templates[case.pk % len(self.templates)]
            key = hashlib.sha256(f"{self.slug}:{case.case_id}".encode()).hexdigest()
            images.append(Image(
                case=case, file=template.file.name, source_key=key,
                sop_uid=f"2.25.{int(key[:30], 16)}", series_uid=f"2.25.{int(key[30:60], 16)}",
                modality=template.modality, view_position=template.view_position,
                rows=template.rows, columns=template.columns,
                bits_stored=template.bits_stored, photometric=template.photometric,
                transfer_syntax=template.transfer_syntax,
                window_center=template.window_center, window_width=template.window_width,
                file_size=template.file_size, sha256=template.sha256, synthetic=True))
        Image.objects.bulk_create(images, batch_size=1000)
        made += new
        drafts = []
        config, fingerprint = self.endpoint.config(), self.endpoint.fingerprint
        for case in made:
            record = self.records[self._record_of(case)]
            findings, impression = write_report(record.truth.draft, self.rng)
            drafts.append(Draft(case=case, endpoint=self.endpoint, fingerprint=fingerprint,
                                config=config, backend=self.endpoint.backend,
                                status=Draft.Status.DONE, attempts=1, findings=findings,
                                impression=impression, model_reported="demo", queued_at=now,
                                sent_at=now, started_at=now, finished_at=now))
        Draft.objects.bulk_create(drafts, batch_size=1000)
        return made

    def _record_of(self, case: Case) -> int:
        """The demo record a case's history came from (histories are unique)."""
        if not hasattr(self, "_by_history"):
            self._by_history = {r.history: i for i, r in enumerate(self.records)}
        return self._by_history[case.history]

    # --- work done before the test ----------------------------------------------------------

    def _read(self, cases: list[Case]) -> None:
        """Both readings of each case, submitted by the past readers (the real services)."""
        assignments = (Assignment.objects.filter(case__in=cases)
                       .select_related("case__trial", "reader__user").order_by("case", "arm"))
        for assignment in assignments:
            user = assignment.reader.user
            opened = reading.open_reading(assignment, user=user)
            opened = reading.record_event(opened, ReadingEvent.Kind.IMAGE_DISPLAYED)
            truth = self.records[self._record_of(assignment.case)].truth
            if assignment.arm == Arm.AI_ASSISTED:
                findings, impression = edit_draft(opened.findings, opened.impression,
                                                  list(truth.findings), self.rng)
            else:
                findings, impression = scp_report(list(truth.findings), self.rng)
            reading.submit(opened, findings=findings, impression=impression,
                           version=opened.version, user=user)

    def _sign(self, cases: list[Case]) -> None:
        """Signed final reports (simulated signatures: nobody typed a password)."""
        senior_of = {m.site_id: m for m in self.seniors}
        for case in cases:
            senior = senior_of[case.site_id]
            opened = review.open_review(case, senior=senior)
            first = Reading.objects.get(pk=opened.order[0])
            review.sign(opened, findings=first.findings, impression=first.impression,
                        version=opened.version, by=senior.user, started_from="report1",
                        simulated=True)

    def _campaign(self) -> Campaign:
        campaign = Campaign.objects.create(
            trial=self.trial, name="Load test campaign", kind=Campaign.Kind.PROSPECTIVE,
            instruments=[inst.LIKERT, inst.RADPEER, inst.ACCEPTABILITY, inst.ERRORS,
                         inst.PREFERENCE, inst.SOURCE_ID],
            radpeer_variant=inst.RADPEER_REFERENCE, raters_per_item=RATERS_PER_ITEM,
            include_ai_alone=True, allow_revision=False, created_by=self.by)
        campaign.raters.set(self.raters)
        rating_build.build(campaign, by=self.by)
        return set_campaign_status(campaign, Campaign.Status.OPEN, by=self.by)

    # --- the whole ------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        slug = self.slug
        self.hashed = make_password(self.password)  # once: hashing is slow on purpose
        self.log(f"Trial {slug}: {self.n_readers} readers x {self.cases_per_reader} cases, "
                 f"{self.n_seniors} seniors x {self.n_ready // self.n_seniors} cases ready, "
                 f"{self.n_raters} raters ({self.n_signed} signed cases to rate), "
                 f"{self.n_coordinators} coordinators.")
        with transaction.atomic():
            self.trial = Trial.objects.create(
                name=f"Load test {slug}", slug=slug, registry_id="LOAD-TEST",
                status=Trial.Status.ENROLLING, block_sizes=[2], stratify_by_site=False,
                same_site_assignment=False)
            self.sites = [Site.objects.create(trial=self.trial, code=f"S{i + 1}",
                                              name=f"Load hospital {i + 1}")
                          for i in range(self.n_seniors)]
            self.endpoint = ModelEndpoint.objects.create(
                trial=self.trial, name="Demo backend (not a model)",
                backend=ModelEndpoint.Backend.DEMO)
            names = [f"{slug}-coordinator-{i + 1}" for i in range(self.n_coordinators)]
            self.coordinators = self._members(Role.COORDINATOR, names, [self.sites[0]] * len(
                names), staff=True)
            self.by = self.coordinators[0].user
            for member in self.coordinators:
                TOTPDevice.objects.create(user=member.user, name=AUTHENTICATOR, confirmed=True,
                                          key=totp_key(slug, member.user.username))
            # The past readers first: the list's first block (size 2) gives them both arms.
            self.past = self._members(Role.READER, [f"{slug}-past-1", f"{slug}-past-2"],
                                      [self.sites[0]] * 2)
            generate_list(self.trial, by=self.by, slots_per_stratum=self.n_readers + 2,
                          seed_source=lambda: 7)
            allocate_all(self.trial, by=self.by)
            self.seniors = self._members(
                Role.SENIOR, [f"{slug}-senior-{i + 1}" for i in range(self.n_seniors)],
                self.sites)
            self.raters = self._members(
                Role.RATER, [f"{slug}-rater-{i + 1}" for i in range(self.n_raters)],
                [None] * self.n_raters)
        self.log(f"Importing {self.n_images} synthetic radiographs ...")
        self._template_images()
        self.log(f"Reading {self.n_ready + self.n_signed} cases beforehand, signing "
                 f"{self.n_signed} ...")
        with transaction.atomic():
            sites = self.sites
            ready = self._cases([s for s in sites for _ in range(self.n_ready // len(sites))])
            signed = self._cases([sites[i % len(sites)] for i in range(self.n_signed)])
            assign_cases(self.trial, by=self.by, seed=11)  # all to the two past readers
            self._read(ready + signed)
            self._sign(signed)
            campaign = self._campaign() if self.raters else None
        self.log(f"Enrolling and assigning {self.n_unread} cases to the readers ...")
        with transaction.atomic():
            self.readers = self._members(
                Role.READER, [f"{slug}-reader-{i + 1:03d}" for i in range(self.n_readers)],
                [self.sites[i % len(self.sites)] for i in range(self.n_readers)])
            allocate_all(self.trial, by=self.by)
            self._cases([self.sites[i % len(self.sites)] for i in range(self.n_unread)])
            assign_cases(self.trial, by=self.by, seed=13)
            lifecycle.set_status(self.trial, Trial.Status.READING, by=self.by)
        loads = {m.user.username: m.assignments.count() for m in self.readers}
        return {
            "trial": slug,
            "campaign": campaign.pk if campaign else None,
            "password": self.password,
            "readers": [m.user.username for m in self.readers],
            "seniors": [m.user.username for m in self.seniors],
            "raters": [m.user.username for m in self.raters],
            "coordinators": [{"username": m.user.username,
                              "totp_key": totp_key(slug, m.user.username)}
                             for m in self.coordinators],
            "counts": {
                "cases": Case.objects.filter(trial=self.trial).count(),
                "cases_per_reader_min": min(loads.values()),
                "cases_per_reader_max": max(loads.values()),
                "ready_for_review": self.n_ready,
                "signed": self.n_signed,
                "rater_items": campaign.rater_items.count() if campaign else 0,
                "distinct_images": len(self.templates),
            },
        }


# --- the check after the test -------------------------------------------------------------

def _texts(value: dict | None) -> tuple[str, str] | None:
    return None if value is None else (value.get("findings", ""), value.get("impression", ""))


def check_saved(expected: list[dict]) -> dict[str, Any]:
    """Compare each stored reading or review with what the load test last saved."""
    ok = in_flight = 0
    lost: list[dict[str, Any]] = []
    for entry in expected:
        acked, pending = _texts(entry.get("acked")), _texts(entry.get("pending"))
        if entry["kind"] == "reading":
            row = Reading.objects.filter(assignment__reader__user__username=entry["user"],
                                         assignment__position=entry["position"]).first()
            where = {"user": entry["user"], "position": entry["position"]}
        else:
            row = Review.objects.filter(senior__user__username=entry["user"],
                                        case_id=entry["case"]).first()
            where = {"user": entry["user"], "case": entry["case"]}
        stored = None if row is None else (row.findings, row.impression)
        if stored is not None and stored == acked:
            ok += 1
        elif stored is not None and stored == pending:
            in_flight += 1
        else:
            lost.append({**where, "kind": entry["kind"], "stored": stored is not None,
                         "stored_chars": len("".join(stored)) if stored else None,
                         "acked_chars": len("".join(acked)) if acked else None,
                         "status": getattr(row, "status", None)})
    return {"checked": len(expected), "equal_to_last_acknowledged": ok,
            "equal_to_save_in_flight_at_stop": in_flight, "lost": lost}
