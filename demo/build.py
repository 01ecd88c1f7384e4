"""The demo trial: people, sites, randomised readers, synthetic cases, assignments.

Built through the same service functions a coordinator uses (import, screening, consent,
enrolment, randomisation, assignment), so the demo exercises the real paths. Each case has one
truth (``demo.cases``): its history states the age and sex its DICOM header carries, and its
synthetic radiograph shows the findings its history implies.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from accounts.policy import flag_demo_account
from drafting.models import ModelEndpoint
from trial.assignment import assign_cases
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.enrolment import enrol, record_consent, screen
from trial.models import Case, EligibilityCriterion, Membership, Role, Site, Trial
from trial.randomization import allocate_all, generate_list

from .cases import DemoRecord, demo_records

DEMO_SLUG = "demo"
DEMO_PASSWORD = "cxr-demo"  # noqa: S105 - printed on purpose: a local, synthetic demo

SITES = [
    ("H1", "Demo University Hospital"),
    ("H2", "Demo City Hospital"),
    ("H3", "Demo County Hospital"),
]

CRITERIA = [
    ("inclusion", "suspected_thoracic_disease",
     "Clinically suspected thoracic disease needing a chest radiograph"),
    ("inclusion", "informed_consent", "Written informed consent obtained"),
    ("inclusion", "complete_record", "Complete clinical record (complaint, history, labs)"),
    ("exclusion", "substandard_image",
     "Substandard image quality (motion, exposure, missing anatomy)"),
    ("exclusion", "pregnant_or_lactating", "Pregnant or lactating"),
]

# A PA film of a 35 x 43 cm detector at 0.24 mm, 12 bits stored in 16 (as a CR or DR plate
# writes it): the size of a real one, with the demo's data directory kept near 250 MB.
IMAGE_ROWS, IMAGE_COLUMNS, PIXEL_SPACING_MM, BITS_STORED = 1792, 1472, 0.24, 12

Progress = Callable[[str, int, int], None]


@dataclass
class DemoLogin:
    username: str
    role: str
    site: str


def demo_exists() -> bool:
    return Trial.objects.filter(slug=DEMO_SLUG).exists()


def _user(username: str, *, staff: bool = False, password: str = ""):
    """``password``: the demo password, hashed once for all the accounts (hashing is slow
    on purpose: sixteen times took ten seconds)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username, defaults={"email": f"{username}@demo.invalid", "is_staff": staff}
    )
    if created:
        user.password = password or make_password(DEMO_PASSWORD)
        user.save()
    flag_demo_account(user)  # no two-factor sign-in for it, in demo mode only
    return user


def _people(trial: Trial, sites: dict[str, Site]) -> tuple[object, list[DemoLogin]]:
    logins: list[DemoLogin] = []
    password = make_password(DEMO_PASSWORD)

    def member(username: str, role: str, site: Site | None, years: int, *, staff=False):
        user = _user(username, staff=staff, password=password)
        Membership.objects.create(
            trial=trial, user=user, role=role, site=site, years_experience=years
        )
        logins.append(DemoLogin(username, Role(role).label, site.code if site else "–"))
        return user

    coordinator = member("coordinator", Role.COORDINATOR, sites["H1"], 10, staff=True)
    member("statistician", Role.STATISTICIAN, None, 12)
    codes = list(sites)
    for i in range(6):
        member(f"reader{i + 1}", Role.READER, sites[codes[i // 2]], 2 + i % 4)
    for i, code in enumerate(codes):
        member(f"senior{i + 1}", Role.SENIOR, sites[code], 15 + i)
    for i in range(5):
        member(f"rater{i + 1}", Role.RATER, sites[codes[i % 3]], 8 + i)
    return coordinator, logins


def _synthetic_site_files(folder: Path, *, site_code: str, records: list[DemoRecord],
                          start: int, made: Callable[[], None]) -> Path:
    """A synthetic study per record in ``folder``, and a history CSV keyed by accession
    number beside it (not in it: the import would report it as a file that is not DICOM)."""
    history = folder.parent / f"history-{site_code}.csv"
    with history.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["accession_number", "chief_complaint", "history", "lab_results", "prior_imaging"]
        )
        for i, record in enumerate(records):
            n = start + i
            accession = f"ACC{site_code}{n:05d}"
            make_cxr(
                folder / f"study{n:03d}.dcm",
                seed=n,
                rows=IMAGE_ROWS,
                columns=IMAGE_COLUMNS,
                pixel_spacing=PIXEL_SPACING_MM,
                bits=BITS_STORED,
                patient_id=f"MRN{site_code}{n:06d}",
                patient_name=f"Synthetic^Patient{n}",
                accession=accession,
                age=record.age,
                sex=record.sex,
                findings=record.truth.findings,
            )
            writer.writerow([accession, *record.csv_row])
            made()
    return history


def build_demo(*, cases: int = 30, excluded: int = 2, seed: int = 2025,
               progress: Progress | None = None) -> list[DemoLogin]:
    """Create the demo trial; refuses (ValueError) when it exists already.

    ``progress(stage, done, total)`` is called as the images are made and the cases enrolled.
    """
    progress = progress or (lambda stage, done, total: None)
    if demo_exists():
        raise ValueError("The demo trial already exists.")
    with transaction.atomic():
        trial = Trial.objects.create(
            name="Demo: AI-assisted CXR reporting (synthetic data)",
            slug=DEMO_SLUG,
            registry_id="NCT06874647 (demo)",
            status=Trial.Status.ENROLLING,
            block_sizes=[2],
            stratify_by_site=True,
            same_site_assignment=True,
        )
        sites = {code: Site.objects.create(trial=trial, code=code, name=name)
                 for code, name in SITES}
        for order, (kind, code, text) in enumerate(CRITERIA):
            EligibilityCriterion.objects.create(
                trial=trial, kind=kind, code=code, text=text, order=order
            )
        # The offline demo backend, labelled as such everywhere a draft is shown or exported.
        ModelEndpoint.objects.create(trial=trial, name="Demo backend (not a model)",
                                     backend=ModelEndpoint.Backend.DEMO)
        coordinator, logins = _people(trial, sites)
        # Synthetic demo: a known list from the demo's seed (a real trial's seed is drawn).
        generate_list(trial, by=coordinator, seed_source=lambda: seed)
        allocate_all(trial, by=coordinator)

    eligible = {code: kind == "inclusion" for kind, code, _ in CRITERIA}
    total = cases + excluded
    records = demo_records(total, seed=seed)
    per_site = [total // 3 + (1 if i < total % 3 else 0) for i in range(3)]
    start, made = 1, 0

    def one_made() -> None:
        nonlocal made
        made += 1
        progress("images", made, total)

    with tempfile.TemporaryDirectory(prefix="cxr-demo-") as tmp:
        folders = []
        for (code, site), count in zip(sites.items(), per_site, strict=True):
            folder = Path(tmp) / code
            folder.mkdir()
            history = _synthetic_site_files(folder, site_code=code,
                                            records=records[start - 1:start - 1 + count],
                                            start=start, made=one_made)
            folders.append((site, folder, history, start - 1))
            start += count
        for site, folder, history, before in folders:
            import_path(folder, trial=trial, site=site, by=coordinator, history_csv=history,
                        progress=lambda done, _, before=before: progress(
                            "import", before + done, total))

    screened = list(Case.objects.filter(trial=trial).order_by("case_id"))
    rng = np.random.default_rng([seed, 11])
    excluded_ids = ({screened[i].pk for i in rng.choice(len(screened), excluded, replace=False)}
                    if excluded else set())
    for n, case in enumerate(screened, 1):
        if case.pk in excluded_ids:
            screen(case, answers={**eligible, "substandard_image": True}, by=coordinator)
        else:
            screen(case, answers=eligible, by=coordinator)
            record_consent(case, by=coordinator)
            enrol(case, by=coordinator)  # queues its AI draft (made now if tasks run in-process)
        progress("enrolment and AI drafts", n, len(screened))
    assign_cases(trial, by=coordinator, seed=seed)
    trial.status = Trial.Status.READING
    trial.save(update_fields=["status"])
    return logins


def demo_logins() -> list[DemoLogin]:
    trial = Trial.objects.get(slug=DEMO_SLUG)
    return [
        DemoLogin(m.user.get_username(), m.get_role_display(), m.site.code if m.site else "–")
        for m in trial.memberships.select_related("user", "site").order_by("role", "user__username")
    ]
