"""The demo's cases: each has one truth, and its history, age, image, AI draft and simulated
reports all follow from it.

A case is written from a scenario (a clinical question and the story that goes with it): the
age and sex are drawn first and stated in the history as the DICOM header will state them;
the history ends with the clinical question and, where the examination lateralises, names the
side. The truth, the findings the image shows, is then what ``drafting.backends.demo_case``
derives from that history text, the same function the demo model backend and the simulation
use, so all of them agree without sharing a store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drafting.backends import DEMO_QUESTIONS, DemoCase, demo_case
from trial.findings import FINDINGS, NO_FINDING

Rng = np.random.Generator
Writer = Callable[[Rng, int, str, str], tuple[str, str, str, str]]


@dataclass(frozen=True)
class DemoRecord:
    """One demo case as the history CSV and the DICOM header carry it, and its truth."""

    age: int
    sex: str  # "M" or "F"
    chief_complaint: str
    history: str
    lab_results: str
    prior_imaging: str
    truth: DemoCase

    @property
    def csv_row(self) -> list[str]:
        return [self.chief_complaint, self.history, self.lab_results, self.prior_imaging]


@dataclass(frozen=True)
class Scenario:
    question: str  # one of drafting.backends.DEMO_QUESTIONS
    weight: int  # cases of this scenario per 30
    ages: tuple[int, int]
    male: float  # share of men
    write: Writer  # (rng, age, sex, side) -> complaint, story, labs, prior imaging
    lateral: bool = False  # the story names a side (the truth's)


def _pick(rng: Rng, *options: str) -> str:
    return options[int(rng.integers(len(options)))]


def _pneumonia(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    days = int(rng.integers(2, 8))
    where = (f"bronchial breathing in the {side} upper zone" if rng.random() < 0.2
             else f"crackles at the {side} base")
    story = (f"Productive cough for {days} days, fever {38 + rng.integers(2, 10) / 10:.1f} C. "
             f"On examination {where}. " + _pick(rng, "Non-smoker.", "Ex-smoker.",
                                                  "Smoker, 20 pack-years."))
    labs = f"WBC {rng.uniform(11, 19):.1f} x10^9/L, CRP {int(rng.integers(60, 260))} mg/L"
    complaint = _pick(rng, f"Cough and fever for {days} days", "Productive cough and fever",
                      "Fever and breathlessness")
    return complaint, story, labs, _pick(rng, "None", "No previous imaging")


def _tuberculosis(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    weeks, kg = int(rng.integers(3, 13)), int(rng.integers(3, 11))
    story = (f"Cough for {weeks} weeks with night sweats and {kg} kg weight loss. Household "
             f"contact of a patient with smear-positive tuberculosis.")
    labs = f"ESR {int(rng.integers(40, 95))} mm/h, sputum AFB pending"
    return "Chronic cough, weight loss, night sweats", story, labs, "None"


def _malignancy(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    packs, weeks = int(rng.integers(25, 70)), int(rng.integers(2, 9))
    story = (f"Smoker, {packs} pack-years. Haemoptysis for {weeks} weeks and weight loss. "
             "Suspected lung cancer.")
    labs = f"Hb {int(rng.integers(105, 135))} g/L, CEA {rng.uniform(5, 25):.1f} ng/mL"
    return _pick(rng, "Haemoptysis", "Haemoptysis and weight loss"), story, labs, "None"


def _cardiac_failure(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    story = (f"Known heart failure, ejection fraction {int(rng.integers(20, 40))}%. Worsening "
             f"breathlessness and ankle swelling for {int(rng.integers(3, 15))} days.")
    labs = f"NT-proBNP {int(rng.integers(18, 95)) * 100} pg/mL"
    prior = _pick(rng, "Echo 2024: dilated left ventricle", "CXR 2024: cardiomegaly")
    return "Shortness of breath on exertion", story, labs, prior


def _pneumothorax(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    hours = int(rng.integers(2, 30))
    story = (f"Sudden {side}-sided pleuritic chest pain and breathlessness {hours} hours ago, "
             "after coughing. Tall and thin. " + _pick(rng, "Smoker.", "Non-smoker."))
    labs = f"SpO2 {int(rng.integers(91, 98))}% on air, D-dimer 0.3 mg/L"
    return "Pleuritic chest pain", story, labs, "None"


def _pleural_effusion(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    past = ("Treated for breast cancer in 2019." if sex == "F" and rng.random() < 0.6
            else _pick(rng, "Known liver cirrhosis.", "Known rheumatoid arthritis."))
    story = (f"Breathless for {int(rng.integers(2, 6))} weeks. Reduced breath sounds and stony "
             f"dullness at the {side} base. {past}")
    labs = f"Albumin {int(rng.integers(24, 38))} g/L, CRP {int(rng.integers(5, 60))} mg/L"
    return "Increasing breathlessness", story, labs, "None"


def _rib_fracture(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    days = int(rng.integers(1, 4))
    story = (f"Fall at home {days} day{'s' if days > 1 else ''} ago, tender over the {side} "
             "lateral chest wall. On anticoagulants.")
    labs = f"INR {rng.uniform(2.0, 3.4):.1f}"
    return f"Fall with {side} chest wall pain", story, labs, "None"


def _line_position(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    source = _pick(rng, "urinary sepsis", "sepsis of unknown source", "abdominal sepsis",
                   "necrotising pancreatitis", "septic shock")
    story = (f"ICU day {int(rng.integers(1, 8))}, {source}. Internal jugular central venous "
             "catheter inserted today for vasopressors.")
    labs = f"Lactate {rng.uniform(1.8, 4.5):.1f} mmol/L"
    return "Routine check of central line position", story, labs, "CXR yesterday: no line"


def _infection(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    days = int(rng.integers(1, 4))
    story = (f"On chemotherapy for lymphoma, neutropenic. Fever "
             f"{38 + rng.integers(3, 12) / 10:.1f} C for {days} day{'s' if days > 1 else ''} "
             "and dry cough.")
    labs = (f"Neutrophils {rng.uniform(0.1, 0.8):.1f} x10^9/L, "
            f"CRP {int(rng.integers(80, 220))} mg/L")
    return "Dyspnoea and fever", story, labs, "Staging CT 2025: no lung involvement"


def _postoperative(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    day = int(rng.integers(2, 6))
    story = (f"Day {day} after laparotomy. Fever and reduced breath sounds at the bases; "
             "shallow breathing because of pain.")
    labs = f"WBC {rng.uniform(10, 16):.1f} x10^9/L, CRP {int(rng.integers(60, 160))} mg/L"
    return "Post-operative fever", story, labs, "Pre-operative CXR normal"


def _asthma(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    weeks = int(rng.integers(2, 6))
    story = (f"Asthma, worsening cough and wheeze over {weeks} weeks, no fever. Peak flow "
             f"{int(rng.integers(55, 80))}% of best.")
    labs = f"Eosinophils {rng.uniform(0.4, 1.2):.1f} x10^9/L, CRP {int(rng.integers(2, 12))} mg/L"
    return "Persistent cough", story, labs, "None"


def _preoperative(rng: Rng, age: int, sex: str, side: str) -> tuple[str, str, str, str]:
    operation = _pick(rng, "hip replacement", "knee replacement", "hernia repair",
                      "cholecystectomy")
    story = f"Elective {operation}. No respiratory symptoms. " + _pick(
        rng, "Non-smoker.", "Ex-smoker.")
    labs = f"Hb {int(rng.integers(120, 160))} g/L"
    return "Pre-operative assessment", story, labs, "None"


SCENARIOS = (
    Scenario("pneumonia", 5, (22, 86), 0.5, _pneumonia, lateral=True),
    Scenario("tuberculosis", 3, (19, 65), 0.6, _tuberculosis),
    Scenario("malignancy", 3, (52, 86), 0.6, _malignancy),
    Scenario("cardiac failure", 3, (62, 89), 0.5, _cardiac_failure),
    Scenario("pneumothorax", 2, (18, 34), 0.85, _pneumothorax, lateral=True),
    Scenario("pleural effusion", 2, (50, 85), 0.45, _pleural_effusion, lateral=True),
    Scenario("rib fracture or pneumothorax", 2, (70, 89), 0.45, _rib_fracture, lateral=True),
    Scenario("line position", 2, (38, 80), 0.55, _line_position),
    Scenario("infection", 2, (25, 75), 0.5, _infection),
    Scenario("atelectasis or infection", 2, (40, 85), 0.5, _postoperative),
    Scenario("consolidation", 2, (18, 50), 0.4, _asthma),
    Scenario("pre-operative baseline", 2, (30, 75), 0.5, _preoperative),
)
assert {s.question for s in SCENARIOS} == set(DEMO_QUESTIONS)

# The CheXpert labels of each kind of finding (what a reader who sees it ticks); the first is
# the one whose sensitivity applies (``demo.simulate.Effects.sensitivity``).
LABELS: dict[str, tuple[str, ...]] = {
    "consolidation": ("Pneumonia", "Consolidation"), "opacity": ("Lung Opacity",),
    "tb": ("Lung Opacity",), "nodule": ("Lung Lesion",), "mass": ("Lung Lesion",),
    "effusion": ("Pleural Effusion",), "pneumothorax": ("Pneumothorax",),
    "cardiomegaly": ("Cardiomegaly",), "edema": ("Edema",), "atelectasis": ("Atelectasis",),
    "line": ("Support Devices",), "fracture": ("Fracture",),
    "mediastinum": ("Enlarged Cardiomediastinum",), "pleural": ("Pleural Other",),
}
assert {label for labels in LABELS.values() for label in labels} == set(FINDINGS) - {NO_FINDING}


def labels_of(kind: str, *, cavity: bool = False) -> tuple[str, ...]:
    """The CheXpert labels of a finding of ``kind`` (a cavity is a lung lesion too)."""
    return LABELS[kind] + (("Lung Lesion",) if kind == "tb" and cavity else ())


def write_case(scenario: Scenario, rng: Rng) -> DemoRecord:
    """A case of ``scenario``: age and sex, then the history stating them, then its truth."""
    age = int(rng.integers(scenario.ages[0], scenario.ages[1] + 1))
    sex = "M" if rng.random() < scenario.male else "F"
    side = str(rng.choice(["right", "left"]))
    complaint, story, labs, prior = scenario.write(rng, age, sex, side)
    person = "man" if sex == "M" else "woman"
    history = f"{age}-year-old {person}. {story} Clinical question: {scenario.question}?"
    truth = demo_case(history)
    if truth is None:  # the demo's own histories always parse: a bug if not
        raise AssertionError(f"not a demo history: {history!r}")
    return DemoRecord(age=age, sex=sex, chief_complaint=complaint, history=history,
                      lab_results=labs, prior_imaging=prior, truth=truth)


def demo_records(count: int, *, seed: int) -> list[DemoRecord]:
    """``count`` demo cases: the scenarios in their proportions, in a seeded order; every
    history different (so every case has its own truth)."""
    rng = np.random.default_rng([seed, 7])
    pool = [s for s in SCENARIOS for _ in range(s.weight)]
    order: list[Scenario] = []
    while len(order) < count:
        order += [pool[i] for i in rng.permutation(len(pool))]
    records: list[DemoRecord] = []
    seen: set[str] = set()
    for scenario in order[:count]:
        record = write_case(scenario, rng)
        for _ in range(100):  # a few scenarios have few variants: give up on uniqueness then
            if record.history not in seen:
                break
            record = write_case(scenario, rng)
        seen.add(record.history)
        records.append(record)
    return records
