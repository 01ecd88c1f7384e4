"""Simulate a trial's readings, final reports and blinded ratings from a known generating model.

Why: the analysis must be shown to recover an effect that is known to be there (issue 6's
end-to-end test), and the demo needs data to analyse and reports to rate. Everything goes
through the real services (``reader.reading``, ``reader.review``, ``rating.build``,
``rating.ratings``), so the audit log and every invariant hold exactly as for people using
the pages. Only the clock is the model's: the services stamp the server's time, so reading
and rating times are set afterwards with ``.update()`` (marked SIMULATION below) and one
``trial.simulated`` audit event says so.

The generating model (all draws from one seeded ``numpy.random.Generator``):

* each case's true findings: for a demo case, the truth its history implies
  (``drafting.backends.demo_case``: the findings its image shows); for any other case, the
  14 CheXpert labels drawn independently with prevalences ``Effects.prevalence`` and placed
  at random; >= 3 labels make it a complex case;
* a reader sees each true finding with the arm's sensitivity for its main label (AI-assisted
  detects pneumonia more often) and ticks its labels; they over-call a minor finding (one of
  ``OVERCALLS``) with ``false_positive_rate`` each;
* reports are written from the pool the demo model's drafts come from (``demo.reports``):
  the SCP reader writes one, the AI-arm reader edits the draft, so wording never tells the
  arm;
* reading time = arm mean + complex-case extra + reader + case + noise (normal, seconds);
* latent quality of a report = SCP mean + arm effect + case + reader + report noise; a
  rater's Likert (and RADPEER, with its own means) = latent + rater severity + noise,
  rounded and clipped to 1..5; preference picks the report with the higher latent quality
  plus the rater's noise.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from drafting.backends import demo_case, subtle, write_report
from rating import build
from rating import instruments as inst
from rating import ratings as rating_service
from rating.models import Campaign, RaterItem, Rating
from reader import reading, review
from reader.models import Reading, ReadingEvent, Review
from trial import audit
from trial.dicom.synthetic import LOBES, ImageFinding
from trial.errors import Invalid
from trial.findings import COMPLEX_AT, FINDINGS, NO_FINDING
from trial.models import Arm, Assignment, Case, Membership, Role, Trial

from .cases import labels_of
from .reports import edit_draft, scp_report

CAMPAIGN_NAME = "Prospective quality and preference"

# Prevalence of each finding among cases with suspected thoracic disease (a plausible mix,
# not the reference trial's figures); "No Finding" is what is left when none is present.
PREVALENCE: dict[str, float] = {
    "Enlarged Cardiomediastinum": 0.06, "Cardiomegaly": 0.15, "Lung Opacity": 0.35,
    "Lung Lesion": 0.08, "Edema": 0.08, "Consolidation": 0.15, "Pneumonia": 0.50,
    "Atelectasis": 0.12, "Pneumothorax": 0.04, "Pleural Effusion": 0.18, "Pleural Other": 0.03,
    "Fracture": 0.04, "Support Devices": 0.08,
}

# The minor findings a reader over-calls (false positives); nobody imagines a line or a
# fracture.
OVERCALLS = ("Lung Opacity", "Lung Lesion", "Consolidation", "Atelectasis", "Pleural Effusion",
             "Cardiomegaly")


@dataclass(frozen=True)
class Effects:
    """The true parameters of the generating model (scales: Likert/RADPEER 1-5, seconds)."""

    likert_scp: float = 4.1
    likert_ai_minus_scp: float = 0.3
    radpeer_scp: float = 4.0
    radpeer_ai_minus_scp: float = 0.2
    case_sd: float = 0.4
    reader_sd: float = 0.15
    report_sd: float = 0.3
    rater_sd: float = 0.2
    rating_noise_sd: float = 0.35
    preference_noise_sd: float = 0.3
    time_scp_s: float = 150.0
    time_ai_minus_scp_s: float = -20.0
    time_complex_extra_s: float = 35.0
    time_reader_sd_s: float = 12.0
    time_case_sd_s: float = 25.0
    time_noise_sd_s: float = 25.0
    time_min_s: float = 20.0
    rating_seconds_median: float = 40.0
    review_seconds_median: float = 90.0
    prevalence: Mapping[str, float] = field(default_factory=lambda: dict(PREVALENCE))
    sensitivity_scp: float = 0.80
    sensitivity_ai: float = 0.85
    pneumonia_sensitivity_scp: float = 0.65
    pneumonia_sensitivity_ai: float = 0.95
    false_positive_rate: float = 0.02

    def sensitivity(self, arm: str, finding: str) -> float:
        ai = arm == Arm.AI_ASSISTED
        if finding == "Pneumonia":
            return self.pneumonia_sensitivity_ai if ai else self.pneumonia_sensitivity_scp
        return self.sensitivity_ai if ai else self.sensitivity_scp

    def over_call_rate(self, finding: str) -> float:
        return self.false_positive_rate if finding in OVERCALLS else 0.0

    def positive_rate(self, arm: str, finding: str) -> float:
        """Expected share of reports of ``arm`` ticking ``finding`` (labels drawn at random,
        as for a case that is not the demo's)."""
        p = self.prevalence.get(finding, 0.0)
        return p * self.sensitivity(arm, finding) + (1 - p) * self.over_call_rate(finding)

    def rating_sd(self) -> float:
        """SD of one rating's latent value around its arm mean (all random effects)."""
        return math.sqrt(self.case_sd**2 + self.reader_sd**2 + self.report_sd**2
                         + self.rater_sd**2 + self.rating_noise_sd**2)


def expected_score(mean: float, sd: float) -> float:
    """E[clip(round(X), 1, 5)] for X ~ N(mean, sd): the latent mean seen on the 1-5 scale."""
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x - mean) / (sd * math.sqrt(2))))

    cuts = [-math.inf, 1.5, 2.5, 3.5, 4.5, math.inf]
    return sum(k * (cdf(cuts[k]) - cdf(cuts[k - 1])) for k in range(1, 6))


@dataclass
class SimulationSummary:
    """What was simulated and the truth it was simulated from (for comparing estimates)."""

    trial: str
    seed: int
    fraction: float
    effects: Effects
    cases_selected: int = 0
    cases_already_read: int = 0
    cases_not_ready: int = 0
    cases_simulated: int = 0
    complex_cases: int = 0
    readings_submitted: int = 0
    reviews_signed: int = 0
    reviews_left_unsigned: int = 0
    campaign: str = ""
    items_added: int = 0
    ratings_submitted: int = 0
    items_left_unrated: int = 0
    seconds: float = 0.0
    true_likert_difference: float = 0.0
    true_radpeer_difference: float = 0.0
    true_reading_time_difference_s: float = 0.0
    expected_likert: dict[str, float] = field(default_factory=dict)
    expected_radpeer: dict[str, float] = field(default_factory=dict)
    expected_preference_ai: float = 0.0
    expected_positive_rate: dict[str, dict[str, float]] = field(default_factory=dict)
    reader_quality_effects: dict[str, float] = field(default_factory=dict)
    reader_time_effects_s: dict[str, float] = field(default_factory=dict)
    rater_severity: dict[str, float] = field(default_factory=dict)

    @property
    def expected_likert_difference(self) -> float:
        """The arm difference expected on the observed 1-5 scale (rounding and clipping)."""
        return self.expected_likert[Arm.AI_ASSISTED] - self.expected_likert[Arm.SCP]

    @property
    def expected_radpeer_difference(self) -> float:
        return self.expected_radpeer[Arm.AI_ASSISTED] - self.expected_radpeer[Arm.SCP]

    def lines(self) -> list[str]:
        """A short human-readable account, for the command's output."""
        e = self.effects
        return [
            f"Trial {self.trial}: seed {self.seed}, fraction {self.fraction:g}.",
            f"Cases selected {self.cases_selected}: simulated {self.cases_simulated} "
            f"({self.complex_cases} complex), already read (skipped) "
            f"{self.cases_already_read}, AI draft not ready (skipped) {self.cases_not_ready}.",
            f"Readings submitted {self.readings_submitted}; reviews signed "
            f"{self.reviews_signed}, left unsigned {self.reviews_left_unsigned}.",
            f"Campaign '{self.campaign or '-'}': {self.items_added} items added, "
            f"{self.ratings_submitted} ratings submitted"
            + (f", {self.items_left_unrated} left for the raters." if self.items_left_unrated
               else "."),
            f"Truth: Likert AI-SCP {self.true_likert_difference:+.2f} latent "
            f"({self.expected_likert_difference:+.3f} expected on the 1-5 scale); RADPEER "
            f"{self.true_radpeer_difference:+.2f} ({self.expected_radpeer_difference:+.3f}); "
            f"reading time {e.time_scp_s:.0f} s SCP, "
            f"{e.time_scp_s + e.time_ai_minus_scp_s:.0f} s AI-assisted "
            f"({self.true_reading_time_difference_s:+.0f} s); AI preferred by a rater with "
            f"p = {self.expected_preference_ai:.2f}; pneumonia positive rate "
            f"{self.expected_positive_rate['Pneumonia'][Arm.AI_ASSISTED]:.2f} AI vs "
            f"{self.expected_positive_rate['Pneumonia'][Arm.SCP]:.2f} SCP.",
            f"Took {self.seconds:.1f} s.",
        ]


@dataclass(frozen=True)
class Seen:
    """A finding with the labels a reader who sees it ticks."""

    finding: ImageFinding
    labels: tuple[str, ...]


@dataclass
class _CaseTruth:
    seen: list[Seen]  # the true findings
    quality: float  # case effect on quality
    time_s: float  # case effect on reading time
    demo: bool = False  # from the demo case's history (else drawn at random)

    @property
    def findings(self) -> list[str]:
        return sorted({label for s in self.seen for label in s.labels})

    @property
    def complex(self) -> bool:
        return len(self.findings) >= COMPLEX_AT


@dataclass
class _Done:
    """A simulated reading: its report's latent quality and its simulated duration."""

    reading: Reading
    quality: float
    seconds: float
    seen: list[Seen]


Progress = Callable[[str, int, int], None]


class SimulationError(Invalid):
    """The simulation cannot run on this trial; the message says why."""


def _random_finding(label: str, rng: np.random.Generator) -> ImageFinding:
    """A finding to show ``label`` (a case that is not the demo's), placed at random."""
    side = str(rng.choice(["right", "left"]))
    zone = str(rng.choice(["upper", "mid", "lower"]))
    kind = {"Enlarged Cardiomediastinum": "mediastinum", "Cardiomegaly": "cardiomegaly",
            "Lung Opacity": "opacity", "Lung Lesion": "nodule", "Edema": "edema",
            "Consolidation": "consolidation", "Pneumonia": "consolidation",
            "Atelectasis": "atelectasis", "Pneumothorax": "pneumothorax",
            "Pleural Effusion": "effusion", "Pleural Other": "pleural", "Fracture": "fracture",
            "Support Devices": "line"}[label]
    return ImageFinding(kind, side=side if kind not in ("cardiomegaly", "edema", "line",
                                                        "mediastinum") else "",
                        lobe=str(rng.choice(LOBES[side])) if kind == "consolidation" else "",
                        zone=zone, size="small", cm=float(rng.integers(2, 5)) / 2,
                        rib=int(rng.integers(5, 10)))


def _group(labels: list[str], rng: np.random.Generator) -> list[Seen]:
    """Findings showing ``labels``: pneumonia and consolidation (and an opacity with them) are
    one consolidation; every other label its own finding."""
    out: list[Seen] = []
    airspace = [x for x in ("Pneumonia", "Consolidation") if x in labels]
    rest = [x for x in labels if x not in airspace]
    if airspace:
        extra = ("Lung Opacity",) if "Lung Opacity" in rest else ()
        rest = [x for x in rest if x not in extra]
        out.append(Seen(_random_finding(airspace[0], rng), (*airspace, *extra)))
    out += [Seen(_random_finding(x, rng), (x,)) for x in rest]
    return out


def detection(arm: str, seen: Seen, effects: Effects) -> float:
    """How likely a reader of ``arm`` sees a true finding: from the arm's sensitivity for its
    main label, with the miss rate times 0.4 for an obvious finding (a mass, a moderate
    effusion) and times 1.5 for a subtle one (a small effusion, a nodule, a rib fracture);
    consolidation exactly as the arm's pneumonia sensitivity says (the trial's effect)."""
    base = effects.sensitivity(arm, seen.labels[0])
    f = seen.finding
    factor = 1.0 if f.kind == "consolidation" else 1.5 if subtle(f) else 0.4
    return min(1.0, max(0.0, 1 - (1 - base) * factor))


LABELS_DRAWN = tuple(f for f in FINDINGS if f != NO_FINDING)  # one uniform draw each


def see(truth: list[Seen], arm: str, effects: Effects, rng: np.random.Generator,
        draws: np.ndarray | None = None) -> list[Seen]:
    """What a reader of ``arm`` sees of ``truth``: each finding with ``detection``, and
    over-calls of minor findings the case does not have. ``draws``: one uniform per label
    (``LABELS_DRAWN``; drawn from ``rng`` if not given) decides; ``rng`` places over-calls."""
    u = dict(zip(LABELS_DRAWN, rng.random(len(LABELS_DRAWN)) if draws is None else draws,
                 strict=True))
    seen = [s for s in truth if u[s.labels[0]] < detection(arm, s, effects)]
    present = {label for s in truth for label in s.labels}
    over = [x for x in OVERCALLS if x not in present and u[x] < effects.over_call_rate(x)]
    return seen + _group(over, rng)


def expected_rates(truth: list[Seen], effects: Effects) -> dict[str, dict[str, float]]:
    """Per label and arm, the chance a reader ticks it, given the case's ``truth``."""
    present = {label for s in truth for label in s.labels}
    out: dict[str, dict[str, float]] = {}
    for label in FINDINGS:
        if label == NO_FINDING:
            continue
        out[label] = {}
        for arm in (Arm.AI_ASSISTED, Arm.SCP):
            hits = [s for s in truth if label in s.labels]
            out[label][arm] = (max(detection(arm, s, effects) for s in hits) if hits
                               else 0.0 if label in present else effects.over_call_rate(label))
    return out


def truth_of(history: str, rng: np.random.Generator, effects: Effects,
             draws: np.ndarray | None = None) -> tuple[list[Seen], bool]:
    """A case's true findings: its demo truth (from its history) if it is a demo case, else
    labels present with ``effects.prevalence`` (``draws``: one uniform per label, from
    ``rng`` if not given) placed at random by ``rng``; and whether it was a demo case."""
    demo = demo_case(history)
    if demo is not None:
        return [Seen(f, labels_of(f.kind, cavity=f.cavity)) for f in demo.findings], True
    u = rng.random(len(LABELS_DRAWN)) if draws is None else draws
    present = [f for f, x in zip(LABELS_DRAWN, u, strict=True)
               if x < effects.prevalence.get(f, 0.0)]
    return _group(present, rng), False


def _score(latent: float) -> str:
    return str(int(min(5, max(1, math.floor(latent + 0.5)))))


def _coordinator_user(trial: Trial) -> Any:
    member = (Membership.objects.filter(trial=trial, role=Role.COORDINATOR)
              .select_related("user").order_by("pk").first())
    return member.user if member else None


class _Simulation:
    def __init__(self, trial: Trial, *, seed: int, fraction: float, effects: Effects,
                 by: Any, sign_fraction: float, progress: Progress | None,
                 leave_unrated: int = 0) -> None:
        self.trial, self.effects, self.by = trial, effects, by
        self.sign_fraction = sign_fraction
        self.leave_unrated = leave_unrated
        # Two streams: the generating model's draws (which findings, quality, times, ratings)
        # in the order they have always been made, so a seed gives the ratings and times it
        # always gave; and the wording (where a finding is, how a report says it) apart, so
        # rewording a report never changes the numbers.
        self.rng = np.random.default_rng(seed)
        self.text = np.random.default_rng([seed, 2])
        self.progress = progress or (lambda stage, done, total: None)
        self.summary = SimulationSummary(trial=trial.slug, seed=seed, fraction=fraction,
                                         effects=effects)
        self.reader_q: dict[int, float] = {}
        self.reader_t: dict[int, float] = {}
        self.rater_sev: dict[int, float] = {}
        self.done: dict[int, dict[str, _Done]] = {}
        self.expected: dict[str, dict[str, float]] = defaultdict(
            lambda: {Arm.AI_ASSISTED: 0.0, Arm.SCP: 0.0})

    # --- setup -----------------------------------------------------------------------------

    def _people(self) -> None:
        """Draw every reader's and rater's effect in a fixed order (by pk: reproducible)."""
        e = self.effects
        for member in (Membership.objects.filter(trial=self.trial, role=Role.READER)
                       .select_related("user").order_by("pk")):
            self.reader_q[member.pk] = float(self.rng.normal(0, e.reader_sd))
            self.reader_t[member.pk] = float(self.rng.normal(0, e.time_reader_sd_s))
            name = member.user.get_username()
            self.summary.reader_quality_effects[name] = round(self.reader_q[member.pk], 4)
            self.summary.reader_time_effects_s[name] = round(self.reader_t[member.pk], 2)
        for member in (Membership.objects.filter(trial=self.trial, role=Role.RATER)
                       .select_related("user").order_by("pk")):
            self.rater_sev[member.pk] = float(self.rng.normal(0, e.rater_sd))
            self.summary.rater_severity[member.user.get_username()] = round(
                self.rater_sev[member.pk], 4)

    def _cases(self) -> list[tuple[Case, dict[str, Assignment]]]:
        """The selected cases (a seeded share of the assigned ones) not read yet."""
        by_case: dict[int, dict[str, Assignment]] = defaultdict(dict)
        for a in (Assignment.objects.filter(case__trial=self.trial)
                  .select_related("case__trial", "case__site", "reader__user")
                  .order_by("case_id", "arm")):
            by_case[a.case_id][a.arm] = a
        paired = [pk for pk in sorted(by_case) if set(by_case[pk]) == {Arm.AI_ASSISTED, Arm.SCP}]
        order = [paired[i] for i in self.rng.permutation(len(paired))]
        chosen = order[:round(self.summary.fraction * len(paired))]
        self.summary.cases_selected = len(chosen)
        read = set(Reading.objects.filter(assignment__case__in=chosen)
                   .values_list("assignment__case", flat=True))
        out = []
        for pk in chosen:
            assignments = by_case[pk]
            if pk in read:
                self.summary.cases_already_read += 1
                continue
            ai = assignments[Arm.AI_ASSISTED]
            draft, why = reading.draft_status(ai)
            if draft is None and not self.trial.offer_without_draft:
                self.summary.cases_not_ready += 1
                continue
            out.append((ai.case, assignments))
        return out

    def _draw_case(self, case: Case) -> _CaseTruth:
        """The case's truth: its demo truth (from its history), else drawn at random."""
        e = self.effects
        draws = self.rng.random(len(LABELS_DRAWN))
        seen, demo = truth_of(case.history, self.text, e, draws)
        return _CaseTruth(seen=seen, quality=float(self.rng.normal(0, e.case_sd)),
                          time_s=float(self.rng.normal(0, e.time_case_sd_s)), demo=demo)

    # --- readings --------------------------------------------------------------------------

    def _see(self, truth: _CaseTruth, arm: str) -> list[Seen]:
        return see(truth.seen, arm, self.effects, self.text, self.rng.random(len(LABELS_DRAWN)))

    def _expect(self, truth: _CaseTruth) -> None:
        """Add the case's expected positive rates (given its truth) to the summary's."""
        for label, rates in expected_rates(truth.seen, self.effects).items():
            for arm, rate in rates.items():
                self.expected[label][arm] += rate

    def _read(self, assignment: Assignment, truth: _CaseTruth) -> _Done:
        e, arm = self.effects, assignment.arm
        user = assignment.reader.user
        seen = self._see(truth, arm)
        labels = sorted({label for s in seen for label in s.labels}) or [NO_FINDING]
        opened = reading.open_reading(assignment, user=user)
        opened = reading.record_event(opened, ReadingEvent.Kind.IMAGE_DISPLAYED)
        if arm == Arm.AI_ASSISTED and opened.started_from == Reading.Start.DRAFT:
            findings, impression = edit_draft(opened.findings, opened.impression,
                                              [s.finding for s in seen], self.text)
        else:
            # The one draw where an SCP report's fixed opening used to be chosen: kept, so the
            # generating model's stream (and a seed's numbers) is what it was.
            self.rng.integers(3)
            findings, impression = scp_report([s.finding for s in seen], self.text)
        saved = reading.autosave(opened, findings=findings, impression="",
                                 version=opened.version, labels=labels)
        submitted = reading.submit(saved, findings=findings, impression=impression,
                                   version=saved.version, labels=labels, user=user)
        # The report's random quality (case + reader + report); arm means are added per rating.
        quality = (truth.quality + self.reader_q.get(assignment.reader_id, 0.0)
                   + float(self.rng.normal(0, e.report_sd)))
        mean_t = e.time_scp_s + (e.time_ai_minus_scp_s if arm == Arm.AI_ASSISTED else 0.0)
        seconds = (mean_t + (e.time_complex_extra_s if truth.complex else 0.0) + truth.time_s
                   + self.reader_t.get(assignment.reader_id, 0.0)
                   + float(self.rng.normal(0, e.time_noise_sd_s)))
        return _Done(reading=submitted, quality=quality, seconds=max(e.time_min_s, seconds),
                     seen=seen)

    def _set_reading_times(self) -> None:
        """SIMULATION: the services stamped the server's clock; replace it with the model's.

        Each reader's readings are laid end to end (in the order simulated), ending half an
        hour before now, so every time is in the past and before its senior review."""
        now = timezone.now()
        per_reader: dict[int, list[_Done]] = defaultdict(list)
        for case_pk in self.done:
            for done in self.done[case_pk].values():
                per_reader[done.reading.assignment.reader_id].append(done)
        updates: list[Reading] = []
        stamps: dict[int, dict[str, Any]] = {}
        for reader_pk in sorted(per_reader):
            items = per_reader[reader_pk]
            leads = self.rng.uniform(1, 5, size=len(items))
            pauses = self.rng.uniform(20, 120, size=len(items))
            active = self.rng.uniform(0.85, 1.0, size=len(items))
            total = float(sum(d.seconds for d in items) + leads.sum() + pauses.sum())
            clock = now - timedelta(minutes=30) - timedelta(seconds=total)
            for done, lead, pause, share in zip(items, leads, pauses, active, strict=True):
                r = done.reading
                r.opened_at = clock
                r.first_image_at = clock + timedelta(seconds=float(lead))
                r.submitted_at = r.first_image_at + timedelta(seconds=done.seconds)
                r.last_event_at = r.submitted_at
                r.reading_time_s = done.seconds
                r.active_time_s = round(done.seconds * float(share), 3)
                r.gap_s = 0.0
                r.flags = reading.reading_flags(r)  # from the simulated time, not the stamp
                updates.append(r)
                stamps[r.pk] = {
                    ReadingEvent.Kind.OPENED: r.opened_at,
                    ReadingEvent.Kind.IMAGE_DISPLAYED: r.first_image_at,
                    ReadingEvent.Kind.AUTOSAVE: r.first_image_at
                    + timedelta(seconds=0.6 * done.seconds),
                    ReadingEvent.Kind.SUBMITTED: r.submitted_at,
                }
                clock = r.submitted_at + timedelta(seconds=float(pause))
        Reading.objects.bulk_update(updates, ["opened_at", "first_image_at", "submitted_at",
                                              "last_event_at", "reading_time_s",
                                              "active_time_s", "gap_s", "flags"])
        events = list(ReadingEvent.objects.filter(reading__in=list(stamps)))
        for event in events:
            event.at = stamps[event.reading_id].get(event.kind, event.at)
        ReadingEvent.objects.bulk_update(events, ["at"])

    # --- reviews ---------------------------------------------------------------------------

    def _senior(self, case: Case) -> Membership | None:
        seniors = [m for m in self.seniors if m.site_id in (None, case.site_id)]
        seniors.sort(key=lambda m: (m.site_id is None, m.pk))  # the case's site first
        return seniors[0] if seniors else None

    def _review(self, case: Case) -> bool:
        senior = self._senior(case)
        if senior is None or self.rng.random() >= self.sign_fraction:
            return False
        done = self.done[case.pk]
        opened = review.open_review(case, senior=senior)
        # The senior reports what either reader saw (once), from the same pool of phrasings.
        union = {(s.finding.kind, s.finding.side): s.finding
                 for s in done[Arm.AI_ASSISTED].seen + done[Arm.SCP].seen}
        findings, impression = write_report(list(union.values()), self.text)
        signed = review.sign(opened, findings=findings, impression=impression,
                             version=opened.version, by=senior.user,
                             simulated=True)  # SIMULATION: nobody signs
        # SIMULATION: the senior's time comes from the model, ending when it was signed.
        seconds = float(self.effects.review_seconds_median * math.exp(self.rng.normal(0, 0.4)))
        Review.objects.filter(pk=signed.pk).update(
            review_time_s=seconds, opened_at=signed.signed_at - timedelta(seconds=seconds))
        return True

    # --- ratings ---------------------------------------------------------------------------

    def _campaign(self) -> Campaign | None:
        from rating.lifecycle import set_status

        raters = list(Membership.objects.filter(trial=self.trial, role=Role.RATER))
        if not raters:
            return None
        campaign = Campaign.objects.filter(trial=self.trial, name=CAMPAIGN_NAME).first()
        if campaign is None:
            campaign = Campaign.objects.create(
                trial=self.trial, name=CAMPAIGN_NAME, kind=Campaign.Kind.PROSPECTIVE,
                instruments=[inst.LIKERT, inst.RADPEER, inst.PREFERENCE],
                radpeer_variant=inst.RADPEER_REFERENCE, seed=int(self.rng.integers(2**31)),
                created_by=self.by)
            campaign.raters.set(raters)
            audit.record(action="campaign.created", obj=campaign, actor=self.by,
                         trial=self.trial, after={"name": CAMPAIGN_NAME, "simulated": True})
        self.summary.campaign = campaign.name
        if build.prospective_cases(campaign).exists():
            self.summary.items_added = build.build(campaign, by=self.by)
        if campaign.status == Campaign.Status.DRAFT and campaign.rater_items.exists():
            campaign = set_status(campaign, Campaign.Status.OPEN, by=self.by)
        return campaign

    def _rate(self, campaign: Campaign) -> None:
        e = self.effects
        if campaign.status != Campaign.Status.OPEN:
            return
        todo = list(RaterItem.objects.filter(campaign=campaign, rating__isnull=True,
                                             item__case__in=list(self.done))
                    .select_related("campaign__trial", "item__report", "item__other",
                                    "rater__user")
                    # Not by position: the campaign's orders are seeded with database ids,
                    # and the draws below must not depend on them (same seed, same data).
                    .order_by("rater", "item__case__case_id", "item__report__source",
                              "item__other__source"))
        means = {inst.LIKERT: (e.likert_scp, e.likert_ai_minus_scp),
                 inst.RADPEER: (e.radpeer_scp, e.radpeer_ai_minus_scp)}
        seconds: dict[int, float] = {}
        left = self._left_unrated(todo)
        for n, ri in enumerate(todo, 1):
            severity = self.rater_sev.get(ri.rater_id, 0.0)
            values: dict[str, str] = {}
            for code in ri.item.instruments:
                if code == inst.PREFERENCE:
                    a, b = rating_service.reports_shown(ri)
                    qa, qb = (self._report_quality(r.case_id, r.source) for r in (a, b))
                    noise = float(self.rng.normal(0, e.preference_noise_sd))
                    values[code] = "A" if qa - qb + noise > 0 else "B"
                else:
                    base, diff = means[code]
                    source = ri.item.report.source
                    latent = (base + (diff if source == Arm.AI_ASSISTED else 0.0)
                              + self._random_quality(ri.item.case_id, source) + severity
                              + float(self.rng.normal(0, e.rating_noise_sd)))
                    values[code] = _score(latent)
            took = float(e.rating_seconds_median * math.exp(self.rng.normal(0, 0.4)))
            if ri.pk in left:  # drawn all the same: the other ratings keep their values
                continue
            # open_item refreshes the instance it is given (dropping the loaded relations):
            # give it a stand-in, so submit reuses what was selected above.
            rating_service.open_item(RaterItem(pk=ri.pk, campaign=campaign, item=ri.item,
                                          rater=ri.rater, position=ri.position))
            rating_service.submit(ri, values, by=ri.rater.user)
            seconds[ri.pk] = took
            self.progress("rating", n, len(todo))
        # SIMULATION: the time a rater spent on an item comes from the model.
        items = list(RaterItem.objects.filter(pk__in=list(seconds)))
        for ri in items:
            ri.seconds = seconds[ri.pk]
        RaterItem.objects.bulk_update(items, ["seconds"])
        ratings = list(Rating.objects.filter(rater_item__in=list(seconds)))
        for rating in ratings:
            rating.seconds = seconds[rating.rater_item_id]
        Rating.objects.bulk_update(ratings, ["seconds"])
        self.summary.ratings_submitted = len(todo) - len(left)
        self.summary.items_left_unrated = len(left)

    def _left_unrated(self, todo: list[RaterItem]) -> set[int]:
        """The last ``leave_unrated`` items of each rater's order (so a rater of the demo has
        something to rate, next in their queue once the rest is done)."""
        if not self.leave_unrated:
            return set()
        by_rater: dict[int, list[RaterItem]] = defaultdict(list)
        for ri in todo:
            by_rater[ri.rater_id].append(ri)
        return {ri.pk for items in by_rater.values()
                for ri in sorted(items, key=lambda r: r.position)[-self.leave_unrated:]}

    def _random_quality(self, case_pk: int, source: str) -> float:
        return self.done[case_pk][source].quality

    def _report_quality(self, case_pk: int, source: str) -> float:
        """Latent Likert quality of a report (arm effect included), for preference."""
        diff = self.effects.likert_ai_minus_scp if source == Arm.AI_ASSISTED else 0.0
        return self.effects.likert_scp + diff + self._random_quality(case_pk, source)

    # --- run -------------------------------------------------------------------------------

    def run(self) -> SimulationSummary:
        started = time.perf_counter()
        self._people()
        self.seniors = list(Membership.objects.filter(trial=self.trial, role=Role.SENIOR)
                            .select_related("user").order_by("pk"))
        cases = self._cases()
        for n, (case, assignments) in enumerate(cases, 1):
            truth = self._draw_case(case)
            self._expect(truth)
            self.done[case.pk] = {arm: self._read(assignments[arm], truth)
                                  for arm in (Arm.AI_ASSISTED, Arm.SCP)}
            self.summary.complex_cases += truth.complex
            self.progress("reading", n, len(cases))
        self.summary.cases_simulated = len(cases)
        self.summary.readings_submitted = 2 * len(cases)
        if self.done:
            self._set_reading_times()
        for n, (case, _) in enumerate(cases, 1):
            if self._review(case):
                self.summary.reviews_signed += 1
            else:
                self.summary.reviews_left_unsigned += 1
            self.progress("review", n, len(cases))
        if self.summary.reviews_signed:
            campaign = self._campaign()
            if campaign is not None:
                self._rate(campaign)
        self._truth()
        if not self.done:
            self.summary.seconds = round(time.perf_counter() - started, 3)
            return self.summary
        audit.record(action="trial.simulated", obj=self.trial, actor=self.by, trial=self.trial,
                     after={"seed": self.summary.seed, "fraction": self.summary.fraction,
                            "cases": self.summary.cases_simulated,
                            "ratings": self.summary.ratings_submitted,
                            "note": "Simulated data: reading, review and rating times were "
                                    "set from the generating model after the services ran.",
                            "effects": {k: v for k, v in asdict(self.effects).items()
                                        if k != "prevalence"}})
        self.summary.seconds = round(time.perf_counter() - started, 3)
        return self.summary

    def _truth(self) -> None:
        e, s = self.effects, self.summary
        s.true_likert_difference = e.likert_ai_minus_scp
        s.true_radpeer_difference = e.radpeer_ai_minus_scp
        s.true_reading_time_difference_s = e.time_ai_minus_scp_s
        sd = e.rating_sd()
        for arm, on in ((Arm.SCP, 0.0), (Arm.AI_ASSISTED, 1.0)):
            s.expected_likert[arm] = expected_score(e.likert_scp + on * e.likert_ai_minus_scp,
                                                    sd)
            s.expected_radpeer[arm] = expected_score(
                e.radpeer_scp + on * e.radpeer_ai_minus_scp, sd)
        spread = math.sqrt(2 * e.reader_sd**2 + 2 * e.report_sd**2 + e.preference_noise_sd**2)
        s.expected_preference_ai = 0.5 * (1 + math.erf(
            e.likert_ai_minus_scp / (spread * math.sqrt(2))))
        # Given the truths simulated (a demo case's or a random draw's): what share of each
        # arm's reports should tick each finding.
        n = max(len(self.done), 1)
        s.expected_positive_rate = {
            f: {arm: round(self.expected[f][arm] / n, 4) if self.done
                else round(e.positive_rate(arm, f), 4) for arm in (Arm.AI_ASSISTED, Arm.SCP)}
            for f in FINDINGS if f != NO_FINDING}


def simulate_trial(trial: Trial, *, seed: int, fraction: float = 1.0,
                   effects: Effects | None = None, by: Any = None, sign_fraction: float = 1.0,
                   progress: Progress | None = None,
                   leave_unrated: int = 0) -> SimulationSummary:
    """Read, review and rate a seeded share of ``trial``'s assigned cases from a known model.

    Cases already read (any reading, open or submitted) are skipped, so running it again never
    touches them. ``sign_fraction`` of the reviews are signed, the rest left for the seniors;
    the last ``leave_unrated`` items of each rater's order are left for the rater.
    ``progress(stage, done, total)`` is called as work goes. One transaction: all or nothing.
    """
    if not 0.0 <= fraction <= 1.0:
        raise SimulationError("fraction must be between 0 and 1.")
    if not 0.0 <= sign_fraction <= 1.0:
        raise SimulationError("sign_fraction must be between 0 and 1.")
    by = by if by is not None else _coordinator_user(trial)
    with transaction.atomic():
        return _Simulation(trial, seed=seed, fraction=fraction, effects=effects or Effects(),
                           by=by, sign_fraction=sign_fraction, progress=progress,
                           leave_unrated=leave_unrated).run()
