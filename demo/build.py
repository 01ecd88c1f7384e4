"""The demo trial: people, sites, randomised readers, synthetic cases, assignments.

Built through the same service functions a coordinator uses (import, screening, consent,
enrolment, randomisation, assignment), so the demo exercises the real paths.
"""

from __future__ import annotations

import csv
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.policy import flag_demo_account
from drafting.models import ModelEndpoint
from trial.assignment import assign_cases
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.enrolment import enrol, record_consent, screen
from trial.models import Case, EligibilityCriterion, Membership, Role, Site, Trial
from trial.randomization import allocate_all, generate_list

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

VIGNETTES = [
    ("Cough and fever for 5 days", "Community-acquired pneumonia suspected. Non-smoker.",
     "WBC 14.1 x10^9/L, CRP 112 mg/L", "None"),
    ("Chronic cough, weight loss, night sweats", "Contact with a tuberculosis patient.",
     "ESR 64 mm/h, sputum AFB pending", "None"),
    ("Haemoptysis", "Smoker, 40 pack-years. Suspected lung cancer.",
     "Hb 118 g/L, CEA 9.8 ng/mL", "CT 2024: 8 mm nodule right upper lobe"),
    ("Shortness of breath on exertion", "Known heart failure, ankle swelling.",
     "NT-proBNP 4200 pg/mL", "CXR 2025: cardiomegaly"),
    ("Pleuritic chest pain", "Sudden onset after coughing. Tall, thin, 24 years old.",
     "D-dimer 0.3 mg/L", "None"),
    ("Post-operative fever", "Day 3 after abdominal surgery.",
     "WBC 12.0 x10^9/L, CRP 95 mg/L", "Pre-operative CXR normal"),
    ("Fall with right chest wall pain", "Elderly patient on anticoagulants.",
     "INR 2.6", "None"),
    ("Routine check of central line position", "ICU patient, sepsis.",
     "Lactate 2.8 mmol/L", "CXR yesterday: line tip in SVC"),
    ("Dyspnoea and fever", "Chemotherapy for lymphoma, neutropenic.",
     "Neutrophils 0.4 x10^9/L, CRP 150 mg/L", "CT 2025: mediastinal nodes"),
    ("Persistent cough", "Asthma, worsening over 3 weeks.",
     "Eosinophils 0.6 x10^9/L", "None"),
]


@dataclass
class DemoLogin:
    username: str
    role: str
    site: str


def demo_exists() -> bool:
    return Trial.objects.filter(slug=DEMO_SLUG).exists()


def _user(username: str, *, staff: bool = False):
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username, defaults={"email": f"{username}@demo.invalid", "is_staff": staff}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    flag_demo_account(user)  # no two-factor sign-in for it, in demo mode only
    return user


def _people(trial: Trial, sites: dict[str, Site]) -> tuple[object, list[DemoLogin]]:
    logins: list[DemoLogin] = []

    def member(username: str, role: str, site: Site | None, years: int, *, staff=False):
        user = _user(username, staff=staff)
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


def _synthetic_site_files(folder: Path, *, site_code: str, count: int, start: int) -> Path:
    """Write ``count`` synthetic studies and a history CSV keyed by accession number."""
    rng = random.Random(start)
    history = folder / "history.csv"
    with history.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["accession_number", "chief_complaint", "history", "lab_results", "prior_imaging"]
        )
        for i in range(count):
            n = start + i
            accession = f"ACC{site_code}{n:05d}"
            make_cxr(
                folder / f"study{n:03d}.dcm",
                seed=n,
                patient_id=f"MRN{site_code}{n:06d}",
                patient_name=f"Synthetic^Patient{n}",
                accession=accession,
                age=rng.randint(16, 88),
                sex=rng.choice(["F", "M"]),
            )
            writer.writerow([accession, *VIGNETTES[n % len(VIGNETTES)]])
    return history


def build_demo(*, cases: int = 30, excluded: int = 2, seed: int = 2025) -> list[DemoLogin]:
    """Create the demo trial; refuses (ValueError) when it exists already."""
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
    per_site = [total // 3 + (1 if i < total % 3 else 0) for i in range(3)]
    start = 1
    with tempfile.TemporaryDirectory(prefix="cxr-demo-") as tmp:
        for (code, site), count in zip(sites.items(), per_site, strict=True):
            folder = Path(tmp) / code
            folder.mkdir()
            history = _synthetic_site_files(folder, site_code=code, count=count, start=start)
            import_path(folder, trial=trial, site=site, by=coordinator, history_csv=history)
            start += count

    screened = list(Case.objects.filter(trial=trial).order_by("case_id"))
    rng = random.Random(seed)
    excluded_ids = {c.pk for c in rng.sample(screened, excluded)} if excluded else set()
    for case in screened:
        if case.pk in excluded_ids:
            screen(case, answers={**eligible, "substandard_image": True}, by=coordinator)
            continue
        screen(case, answers=eligible, by=coordinator)
        record_consent(case, by=coordinator)
        enrol(case, by=coordinator)
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
