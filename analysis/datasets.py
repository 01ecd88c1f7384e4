"""Tidy tables from the trial's database: one row per rating value, one row per reading.

These are what the statistics (``analysis.stats``, no Django) and the exports work on, so
every column has one meaning everywhere (DESIGN.md's names: trial, campaign, case, site, arm,
reader, rater, instrument). Pair instruments are resolved here: the rater's "A"/"B" becomes
the source of the report they chose (``chosen_source``), through the sides stored for that
rater. Columns are typed: ``value`` is a number or empty, ``answer`` the answer as text,
timestamps (``*_at``) UTC ISO 8601 text to the second (``2026-12-01T16:41:44Z``). The exports
(:func:`csv_files`, :func:`export_xlsx`, :func:`csv_bytes`) neutralise text that a spreadsheet
would run as a formula (:func:`neutralise`); the tables themselves keep the values as entered.
The report texts (:func:`report_texts`) are a table of their own, only in the statistician's
downloads (``export_frames(trial, texts=True)``), never merged into the other tables; so are
the automated report metrics of the newest stored run (:func:`metric_frames`, ``metrics=True``):
results, not data, so never in the data snapshot hash. A withdrawn case is in the cases table
(its status, for the CONSORT flow) and nowhere else: its readings, final report and ratings
are left out of the analysis.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from django.utils import timezone

from metrics import compute as metrics_compute
from metrics import exports as metrics_exports
from metrics import model_metrics as metrics_model_metrics
from metrics.models import CaseLabels, LabelSet, MetricsRun
from rating import instruments as inst
from rating.models import Campaign, RaterItem
from rating.ratings import reports_shown
from reader.models import Reading, Review
from trial.findings import COMPLEX_AT, FINDINGS, NO_FINDING
from trial.models import Arm, Case, Trial
from trial.spreadsheet import (  # noqa: F401 (part of this module's interface)
    FORMULA_TRIGGERS,
    NEUTRALISING_PREFIX,
    csv_bytes,
    neutralise,
    neutralise_frame,
)

RATING_COLUMNS = [
    "trial", "campaign", "campaign_kind", "item_code", "case", "site", "item_kind", "source",
    "other_source", "arm", "reader", "rater", "instrument", "answer", "value", "chosen_source",
    "seconds", "submitted_at",
]
READING_COLUMNS = [
    "trial", "case", "site", "arm", "reader", "status", "opened_at", "first_image_at",
    "submitted_at", "reading_seconds", "active_seconds", "gap_seconds", "findings_ticked",
    "n_findings", "complex_case", "draft_used", "edit_distance_from_draft",
    "senior_edit_distance", "review_opened_at", "review_signed_at",
]

#: How every timestamp of the exports is written: UTC, ISO 8601, to the second.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_iso(moment: datetime | None) -> str | None:
    """``moment`` as UTC ISO 8601 text to the second (``2026-12-01T16:41:44Z``; the fraction
    of a second is dropped, not rounded), or None."""
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def _text(answer: object) -> str | None:
    return None if answer is None else str(answer)


def _number(answer: object) -> float | None:
    """The answer as a number (Likert, RADPEER 1-5, error counts), else None (ACR RADPEER
    "2a", acceptability letters, "A"/"B" of pairs)."""
    if isinstance(answer, bool):
        return None
    try:
        number = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def ratings(trial: Trial, *, campaign: Campaign | None = None) -> pd.DataFrame:
    """One row per submitted rating value (error counts: one row per type and significance).

    ``answer``: the answer as the rater gave it, as text; ``value``: the answer as a number
    (float), empty when it is not one, and always empty for ACR RADPEER 2016 campaigns (their
    codes 1 / 2a ... are categories, 1 best, not on the 1-5 scale); ``chosen_source``: pair
    instruments, the source of the report the rater picked.
    """
    rater_items = (RaterItem.objects.filter(campaign__trial=trial, rating__isnull=False)
                   .exclude(item__case__status=Case.Status.WITHDRAWN)
                   .select_related("campaign", "item__case__site", "item__report__reading",
                                   "item__other", "rater__user", "rating",
                                   "item__report__reading__assignment__reader__user")
                   .order_by("campaign", "rater", "position"))
    if campaign is not None:
        rater_items = rater_items.filter(campaign=campaign)
    rows = []
    for ri in rater_items:
        item, case = ri.item, ri.item.case
        source = item.report.source
        reading = item.report.reading
        acr = ri.campaign.radpeer_variant == inst.RADPEER_ACR2016
        base = {
            "trial": trial.slug, "campaign": ri.campaign.pk,
            "campaign_kind": ri.campaign.kind, "item_code": ri.code, "case": case.case_id,
            "site": case.site.code, "item_kind": item.kind, "source": source,
            "other_source": item.other.source if item.other_id else None,
            "arm": source if source in (Arm.AI_ASSISTED, Arm.SCP) and not item.other_id
            else None,
            "reader": (reading.assignment.reader.user.get_username()
                       if reading is not None and not item.other_id else None),
            "rater": ri.rater.user.get_username(), "chosen_source": None,
            "seconds": ri.rating.seconds, "submitted_at": utc_iso(ri.rating.submitted_at),
        }
        shown = reports_shown(ri) if item.other_id else None
        for instrument, answer in ri.rating.values.items():
            if isinstance(answer, dict):  # error counts
                for error_type, counts in answer.items():
                    for significance, count in counts.items():
                        rows.append({**base, "instrument": f"errors.{error_type}.{significance}",
                                     "answer": _text(count), "value": _number(count)})
                continue
            row = {**base, "instrument": instrument, "answer": _text(answer),
                   "value": None if acr and instrument == inst.RADPEER else _number(answer)}
            if shown is not None and answer in ("A", "B"):
                row["chosen_source"] = shown[0 if answer == "A" else 1].source
            rows.append(row)
    frame = pd.DataFrame(rows, columns=RATING_COLUMNS)
    frame["value"] = frame["value"].astype("float64")
    frame["seconds"] = frame["seconds"].astype("float64")
    return frame


def readings(trial: Trial) -> pd.DataFrame:
    """One row per reading (open ones too, with status; durations only once submitted), with
    its timestamps and the case's senior review (opened, signed, edit distance)."""
    reviews = {r.case_id: r for r in Review.objects.filter(case__trial=trial)}
    rows = []
    queryset = (Reading.objects.filter(assignment__case__trial=trial)
                .exclude(assignment__case__status=Case.Status.WITHDRAWN)
                .select_related("assignment__case__site", "assignment__reader__user")
                .order_by("assignment__case__case_id", "assignment__arm"))
    for reading in queryset:
        assignment = reading.assignment
        labels = [label for label in reading.labels if label != NO_FINDING]
        review = reviews.get(assignment.case_id)
        signed = review is not None and review.status == Review.Status.SIGNED
        distance = None
        if signed:
            distance = (review.edit_distance_ai if assignment.arm == Arm.AI_ASSISTED
                        else review.edit_distance_scp)
        submitted = reading.status == Reading.Status.SUBMITTED
        rows.append({
            "trial": trial.slug, "case": assignment.case.case_id,
            "site": assignment.case.site.code, "arm": assignment.arm,
            "reader": assignment.reader.user.get_username(), "status": reading.status,
            "opened_at": utc_iso(reading.opened_at),
            "first_image_at": utc_iso(reading.first_image_at),
            "submitted_at": utc_iso(reading.submitted_at) if submitted else None,
            "reading_seconds": reading.reading_time_s, "active_seconds": reading.active_time_s,
            "gap_seconds": reading.gap_s if submitted else None,
            "findings_ticked": ";".join(sorted(reading.labels)), "n_findings": len(labels),
            "complex_case": len(labels) >= COMPLEX_AT,
            "draft_used": reading.started_from == Reading.Start.DRAFT,
            # Stored at submission and amendment (None without a draft).
            "edit_distance_from_draft": reading.edit_distance_from_draft if submitted else None,
            "senior_edit_distance": distance,
            "review_opened_at": utc_iso(review.opened_at) if review is not None else None,
            "review_signed_at": utc_iso(review.signed_at) if signed else None,
        })
    return pd.DataFrame(rows, columns=READING_COLUMNS)


# --------------------------------------------------------------------------------------------
# Report texts (statistician's downloads only)
# --------------------------------------------------------------------------------------------

REPORT_TEXT_COLUMNS = [
    "trial", "case", "site", "source", "arm", "reader", "findings", "impression",
    "submitted_at",
]
REFERENCE, AI_DRAFT = "reference", "ai_draft"
_TEXT_ORDER = {Arm.AI_ASSISTED: 0, Arm.SCP: 1, AI_DRAFT: 2, REFERENCE: 3}


def report_texts(trial: Trial) -> pd.DataFrame:
    """The report texts, one row per text: each submitted reading (source = its arm, as
    amended), the senior's signed final report of each case (source ``reference``) and the
    AI draft the AI-arm reader's editor opened with (source ``ai_draft``).

    Only for the statistician's and coordinator's downloads (the texts are never merged into
    the other tables, and nothing a rater reaches is built from this). Open readings and
    unsigned reviews are left out: their text is a work in progress.
    """
    rows = []
    queryset = (Reading.objects.filter(assignment__case__trial=trial)
                .exclude(assignment__case__status=Case.Status.WITHDRAWN)
                .select_related("assignment__case__site", "assignment__reader__user", "draft")
                .order_by("assignment__case__case_id", "assignment__arm"))
    for reading in queryset:
        assignment = reading.assignment
        case = assignment.case
        common = {"trial": trial.slug, "case": case.case_id, "site": case.site.code}
        if reading.status == Reading.Status.SUBMITTED:
            rows.append({**common, "source": assignment.arm, "arm": assignment.arm,
                         "reader": assignment.reader.user.get_username(),
                         "findings": reading.findings, "impression": reading.impression,
                         "submitted_at": utc_iso(reading.submitted_at)})
        if assignment.arm == Arm.AI_ASSISTED and reading.draft is not None:
            draft = reading.draft
            rows.append({**common, "source": AI_DRAFT, "arm": None, "reader": None,
                         "findings": draft.findings, "impression": draft.impression,
                         "submitted_at": utc_iso(draft.finished_at)})
    for review in (Review.objects.filter(case__trial=trial, status=Review.Status.SIGNED)
                   .exclude(case__status=Case.Status.WITHDRAWN).select_related("case__site")):
        rows.append({"trial": trial.slug, "case": review.case.case_id,
                     "site": review.case.site.code, "source": REFERENCE, "arm": None,
                     "reader": None, "findings": review.findings,
                     "impression": review.impression, "submitted_at": utc_iso(review.signed_at)})
    rows.sort(key=lambda row: (row["case"], _TEXT_ORDER.get(row["source"], 9)))
    return pd.DataFrame(rows, columns=REPORT_TEXT_COLUMNS)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

CASE_COLUMNS = [
    "trial", "case", "site", "status", "exclusion_reason", "age", "age_class", "sex",
    "enrolled", "n_readings_submitted", "n_findings_max", "n_findings_gold", "complex_case",
    "complex_basis",
]
#: ``complex_basis``: what ``complex_case`` was derived from (empty: not derived).
GOLD_LABELS, READER_TICKS, NO_GOLD_LABELS = "gold_labels", "reader_ticks", "no_gold_labels"


def age_class(age: object) -> str | None:
    """PROTOCOL.md's baseline classes: <18, 18-60, >60 (None when the age is unknown)."""
    if age is None or (isinstance(age, float) and age != age):
        return None
    years = float(age)  # type: ignore[arg-type]
    return "<18" if years < 18 else ("18-60" if years <= 60 else ">60")


def gold_findings(trial: Trial) -> tuple[LabelSet | None, dict[int, int]]:
    """The trial's gold-standard label set and, per case pk it labels, the number of positive
    findings other than No Finding (what the complex-case rule counts)."""
    gold = LabelSet.objects.filter(trial=trial, gold=True).first()
    if gold is None:
        return None, {}
    return gold, {row.case_id: sum(int(row.labels.get(f, 0)) for f in FINDINGS
                                   if f != NO_FINDING)
                  for row in CaseLabels.objects.filter(label_set=gold).only("case", "labels")}


def cases(trial: Trial, *, readings_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per screened case, with its baseline data and a derived complex-case flag.

    Complex case: >= 3 findings other than "No Finding". When the trial has a gold-standard
    label set (``metrics.models.LabelSet`` with ``gold``), the count is the gold labels'
    (``n_findings_gold``): they are made independently of the arms, while the readers' ticks
    are made after randomisation and may depend on the arm. A case without gold labels in such
    a trial is then left unclassified (``complex_case`` empty, ``complex_basis``
    ``no_gold_labels``), the conservative choice: the subgroup never mixes two definitions.
    Without a gold set, the flag is derived from the readings: a case is complex when any
    submitted reading ticked >= 3 (``n_findings_max``), and is missing for cases not read yet.
    ``readings_frame``: the trial's :func:`readings`, when the caller has it already (else it
    is loaded here).
    """
    from trial.models import Case

    if readings_frame is None:
        readings_frame = readings(trial)
    submitted = readings_frame[readings_frame["status"] == Reading.Status.SUBMITTED]
    ticked: dict[str, list[int]] = {}
    for case_id, n_findings in zip(submitted["case"], submitted["n_findings"], strict=True):
        ticked.setdefault(case_id, []).append(int(n_findings))
    gold_set, gold = gold_findings(trial)
    rows = []
    for case in (Case.objects.filter(trial=trial).select_related("site")
                 .order_by("case_id")):
        counts = ticked.get(case.case_id, [])
        n_max = max(counts) if counts else None
        n_gold = gold.get(case.pk)
        if gold_set is not None:
            complex_case = None if n_gold is None else n_gold >= COMPLEX_AT
            basis = NO_GOLD_LABELS if n_gold is None else GOLD_LABELS
        else:
            complex_case = None if n_max is None else n_max >= COMPLEX_AT
            basis = None if n_max is None else READER_TICKS
        rows.append({
            "trial": trial.slug, "case": case.case_id, "site": case.site.code,
            "status": case.status, "exclusion_reason": case.exclusion_reason or None,
            "age": case.age, "age_class": age_class(case.age), "sex": case.sex,
            "enrolled": case.status in (Case.Status.ENROLLED, Case.Status.WITHDRAWN)
            or case.enrolled_at is not None,
            "n_readings_submitted": len(counts), "n_findings_max": n_max,
            "n_findings_gold": n_gold, "complex_case": complex_case, "complex_basis": basis,
        })
    frame = pd.DataFrame(rows, columns=CASE_COLUMNS)
    frame["n_findings_gold"] = frame["n_findings_gold"].astype("Int64")
    return frame


# --------------------------------------------------------------------------------------------
# Automated report metrics (the newest stored run; statistician's downloads and the report)
# --------------------------------------------------------------------------------------------

#: The metric tables, in export order (``metrics.exports.tables``' stems).
METRIC_TABLES = ("report_metrics", "finding_metrics", "paired_comparisons", "kappa", "auc",
                 "roc_points", "labeller_validation", "report_level_metrics")


def latest_metrics_run(trial: Trial) -> MetricsRun | None:
    """The run the analysis shows: the trial's newest stored ``MetricsRun``."""
    return metrics_compute.latest(trial)


def metric_frames(trial: Trial, run: MetricsRun | None = None) -> dict[str, pd.DataFrame]:
    """The metric tables of the newest run (``run`` when the caller has it), by table name;
    empty without a run. A table with no rows keeps its documented columns."""
    run = run if run is not None else latest_metrics_run(trial)
    if run is None:
        return {}
    found = metrics_exports.tables(run.results)
    frames = {}
    for name in METRIC_TABLES:
        frame = found.get(name, pd.DataFrame())
        if frame.empty and not len(frame.columns):
            frame = pd.DataFrame(columns=list(METRIC_DICTIONARY[name]))
        frames[name] = frame
    return frames


# --------------------------------------------------------------------------------------------
# Exports: CSV, XLSX with a data dictionary, and a long format for R
# --------------------------------------------------------------------------------------------

DICTIONARY_CSV = "data_dictionary.csv"


NEUTRALISATION_NOTE = (
    "Formula-injection guard (OWASP CSV injection): in every CSV and XLSX export, a text cell "
    "that starts with =, +, -, @, a tab or a carriage return (or with ' itself) is written with "
    "one extra leading ' (e.g. '=1+2), so that no spreadsheet runs it as a formula. Numbers "
    "stay numbers (a negative number is not touched); text that only looks like a number (e.g. "
    "a case id -15) is text and is prefixed. To get the value as entered, remove the first "
    "character of every text cell that starts with ' (in R: sub(\"^'\", \"\", x)).")
LONG_COLUMNS = ["trial", "campaign", "case", "site", "source", "arm", "reader", "rater",
                "instrument", "value", "answer"]

_COMMON = {
    "trial": ("text", "Trial slug."),
    "campaign": ("integer", "Rating campaign id (empty for readings)."),
    "case": ("text", "Pseudonymous case id."),
    "site": ("text", "Site code."),
    "arm": ("text", "Arm of the reading: ai_assisted or scp (empty for model-only or "
                    "imported reports and for pairs)."),
    "reader": ("text", "Username of the junior reader who wrote the report (empty when not a "
                       "reading)."),
    "rater": ("text", "Username of the expert rater."),
    "instrument": ("text", "Rating instrument: likert, radpeer, acceptability, preference, "
                           "source_id, errors.<type>.<significance>; in the long format also "
                           "reading_seconds and active_seconds."),
    "source": ("text", "Who wrote the rated report: ai_assisted, scp, ai_alone, published, or "
                       "an imported source's name."),
}

_TIMESTAMP = "datetime (UTC, ISO 8601 text, to the second, e.g. 2026-12-01T16:41:44Z)"

#: Every column of every exported table: (type, meaning). The data dictionary sheet.
DATA_DICTIONARY: dict[str, dict[str, tuple[str, str]]] = {
    "ratings": {
        **{c: _COMMON[c] for c in ("trial", "campaign", "case", "site", "arm", "reader",
                                   "rater", "instrument", "source")},
        "campaign_kind": ("text", "prospective or retrospective."),
        "item_code": ("text", "The rater's opaque item code."),
        "item_kind": ("text", "single (one report) or pair (two reports side by side)."),
        "other_source": ("text", "Pairs: the source of the second report."),
        "answer": ("text", "The answer as the rater gave it, as text: the level code (Likert "
                           "and RADPEER 1-5, ACR RADPEER 2016 1/2a/2b/3a/3b, acceptability "
                           "letter), A/B for pairs (the report shown left/right to this rater), "
                           "the count for errors.<type>.<significance>."),
        "value": ("number", "The answer as a number (Likert, RADPEER 1-5, error counts); empty "
                            "when the answer is not a number (acceptability letters, pairs) and "
                            "for ACR RADPEER 2016 campaigns, whose codes are categories (1 best; "
                            "see answer)."),
        "chosen_source": ("text", "Pair instruments (preference, source_id): the source of the "
                                  "report the rater picked (A/B resolved through this rater's "
                                  "sides); empty otherwise."),
        "seconds": ("number", "Seconds the rater spent on the item (server clock)."),
        "submitted_at": (_TIMESTAMP, "When the rating was submitted (last submitted, when the "
                                     "campaign allows revisions)."),
    },
    "readings": {
        **{c: _COMMON[c] for c in ("trial", "case", "site", "arm", "reader")},
        "status": ("text", "Reading status (open, submitted ...)."),
        "opened_at": (_TIMESTAMP, "When the reader first opened the case."),
        "first_image_at": (_TIMESTAMP, "When the first image was shown (reading time starts "
                                       "here; empty if the page never reported it)."),
        "submitted_at": (_TIMESTAMP, "When the report was submitted (empty while open; an "
                                     "amendment does not change it)."),
        "reading_seconds": ("number", "Reading time: first look at the CXR to report "
                                      "submitted, seconds."),
        "active_seconds": ("number", "Reading time with idle gaps removed, seconds."),
        "gap_seconds": ("number", "Idle time removed from the reading time, seconds."),
        "findings_ticked": ("text", "CheXpert findings the reader ticked, ';'-separated."),
        "n_findings": ("integer", "Number of findings ticked other than No Finding."),
        "complex_case": ("boolean", "This reading ticked >= 3 findings."),
        "draft_used": ("boolean", "The editor started from the AI draft."),
        "edit_distance_from_draft": ("integer", "Characters changed from the AI draft to the "
                                                "submitted report."),
        "senior_edit_distance": ("integer", "Characters the senior changed from this report to "
                                            "the signed report."),
        "review_opened_at": (_TIMESTAMP, "When the senior opened the case's final report "
                                         "(empty before)."),
        "review_signed_at": (_TIMESTAMP, "When the senior signed the case's final report "
                                         "(empty until signed)."),
    },
    "cases": {
        **{c: _COMMON[c] for c in ("trial", "case", "site")},
        "status": ("text", "screened, excluded, enrolled or withdrawn."),
        "exclusion_reason": ("text", "Why a screened case was excluded."),
        "age": ("integer", "Age in years (90 = 90+)."),
        "age_class": ("text", "<18, 18-60 or >60."),
        "sex": ("text", "F, M, O (other) or U (unknown)."),
        "enrolled": ("boolean", "The case was enrolled (withdrawn cases were enrolled first)."),
        "n_readings_submitted": ("integer", "Submitted readings of the case."),
        "n_findings_max": ("integer", "Most findings (other than No Finding) ticked by any "
                                      "reader of the case."),
        "n_findings_gold": ("integer", "Findings other than No Finding positive in the trial's "
                                       "gold-standard labels of the case (empty without a gold "
                                       "label set or without gold labels for the case)."),
        "complex_case": ("boolean", "Complex case (>= 3 findings other than No Finding), "
                                    "derived as complex_basis says: from n_findings_gold when "
                                    "the trial has a gold-standard label set (empty for a case "
                                    "it does not label), else from n_findings_max (empty for "
                                    "cases not read yet)."),
        "complex_basis": ("text", "What complex_case was derived from: gold_labels (the gold "
                                  "label set), reader_ticks (the readings; only when the trial "
                                  "has no gold label set), no_gold_labels (the trial has a gold "
                                  "set but it does not label this case: left unclassified, out "
                                  "of the complex-case subgroup; the readers' ticks are not used "
                                  "instead), empty (not read and no gold set)."),
    },
    "long": {
        **{c: _COMMON[c] for c in LONG_COLUMNS if c in _COMMON},
        "value": ("number", "The observation as a number (empty when it is a category)."),
        "answer": ("text", "The observation as text (categories: the chosen report's source, "
                           "ACR RADPEER codes, acceptability letters)."),
    },
    "report_texts": {
        **{c: _COMMON[c] for c in ("trial", "case", "site")},
        "source": ("text", "Who wrote the text: ai_assisted or scp (a submitted reading, as "
                           "amended), reference (the senior's signed final report of the case) "
                           "or ai_draft (the AI draft the AI-arm reader's editor opened with)."),
        "arm": ("text", "Arm of the reading (empty for reference and ai_draft)."),
        "reader": ("text", "Username of the junior reader who wrote the report (empty for "
                           "reference and ai_draft)."),
        "findings": ("text", "FINDINGS section of the report."),
        "impression": ("text", "IMPRESSION section of the report."),
        "submitted_at": (_TIMESTAMP, "When the text became final: the reading submitted, the "
                                     "final report signed, the AI draft finished."),
    },
}


def _metric_columns() -> dict[str, tuple[str, str]]:
    """report_metrics' per-metric columns: each metric of ``metrics.compute.NAMES`` (model
    metrics included) with its CI and, when it has no value, why."""
    found: dict[str, tuple[str, str]] = {}
    for key, title in metrics_compute.NAMES.items():
        found[key] = ("number", f"{title} on the 0-1 scale (the report shows it x100); empty "
                                f"when not computed (see {key}_note).")
        found[f"{key}_ci_low"] = ("number", f"{title}: lower end of the bootstrap CI (0-1).")
        found[f"{key}_ci_high"] = ("number", f"{title}: upper end of the bootstrap CI (0-1).")
        found[f"{key}_note"] = ("text", f"{title}: why it was not computed (\"not computed: "
                                        f"<reason>\"); empty when it has a value.")
    return found


_FINDING_LABEL_COLUMNS = {
    **{f.lower().replace(" ", "_"): ("integer", f"The labeller's label of {f} in this report "
                                                "(1 positive, 0 not; empty when unlabelled).")
       for f in FINDINGS},
    **{"ref_" + f.lower().replace(" ", "_"): ("integer", f"The labeller's label of {f} in the "
                                                         "reference report (1, 0 or empty).")
       for f in FINDINGS},
}
_RUN_SOURCE = ("text", "The report's source: a model or imported source's name, published, "
                       "ai_draft, ai_assisted, scp or final_report (metrics.sources).")
_COMPARISON = ("text", "The comparison's key: campaign-<id> (a retrospective campaign's "
                       "sources against the published reports), prospective-final (against the "
                       "senior's final report) or prospective-draft (the readers' reports "
                       "against the AI draft).")
_FINDING = ("text", "One of the 14 CheXpert findings.")

#: The metric tables' columns (``metrics.exports``; values on the 0-1 scale throughout): with
#: ``DATA_DICTIONARY``, every column of every exported table. Each metric table is written with
#: exactly these columns, in this order (``metrics.exports.COLUMNS``), whatever the run
#: computed: a value it did not compute is empty, with its ``<metric>_note``.
METRIC_DICTIONARY: dict[str, dict[str, tuple[str, str]]] = {
    "report_metrics": {
        "comparison": _COMPARISON,
        "comparison_title": ("text", "The comparison's title (the campaign's name)."),
        "study": ("text", "retrospective or prospective."),
        "reference": ("text", "The reference report's source: published, final_report or "
                              "ai_draft."),
        "source": _RUN_SOURCE,
        "source_name": ("text", "What the report calls the source."),
        "n_cases": ("integer", "Cases with both the source's report and the reference report."),
        **_metric_columns(),
        "f1_5_findings": ("text", "The 5 findings most often positive in the reference labels "
                                  "(No Finding excluded) that F1-5 averages, '; '-separated."),
    },
    "finding_metrics": {
        "comparison": _COMPARISON, "source": _RUN_SOURCE,
        "n_cases": ("integer", "Cases compared."),
        "finding": _FINDING,
        "precision": ("number", "Precision of the source's labels against the reference "
                                "report's labels (0 when undefined)."),
        "recall": ("number", "Recall (0 when undefined)."),
        "f1": ("number", "F1 (0 when undefined, scikit-learn's zero_division=0)."),
        "support": ("integer", "Cases whose reference report is positive for the finding."),
        "positive_rate": ("number", "Share of the source's reports positive for the finding."),
        "reference_positive_rate": ("number", "Share of the reference reports positive."),
    },
    "paired_comparisons": {
        "comparison": _COMPARISON,
        "a": ("text", "First source of the pair."),
        "b": ("text", "Second source of the pair."),
        "metric": ("text", "Metric key (see report_metrics' columns)."),
        "n": ("integer", "Cases both sources have."),
        "difference": ("number", "Metric of a minus metric of b, on the common cases (0-1)."),
        "ci_low": ("number", "Lower end of the paired-bootstrap CI of the difference."),
        "ci_high": ("number", "Upper end of the paired-bootstrap CI of the difference."),
        "p": ("number", "Two-sided P, approximate randomisation test (sources swapped within "
                        "cases)."),
    },
    "kappa": {
        "comparison": _COMPARISON, "source": _RUN_SOURCE,
        "name": ("text", "What the report calls the source."),
        "finding": _FINDING,
        "n": ("integer", "Cases with gold labels and the source's labels."),
        "kappa": ("number", "Cohen's kappa of the source's labels against the gold-standard "
                            "labels (empty when undefined: both constant and agreeing)."),
        "ci_low": ("number", "Lower end of the bootstrap CI of kappa."),
        "ci_high": ("number", "Upper end of the bootstrap CI of kappa."),
        "positive_rate": ("number", "Share of the source's labels positive."),
        "gold_positive_rate": ("number", "Share of the gold labels positive."),
    },
    "auc": {
        "source": ("text", "The source of the imported probabilities."),
        "finding": _FINDING,
        "n": ("integer", "Cases with gold labels and a probability for the finding."),
        "auc": ("number", "ROC AUC against the gold labels (empty when a class is absent)."),
        "se": ("number", "DeLong standard error of the AUC."),
        "ci_low": ("number", "Lower end of the DeLong (Wald) CI, clipped to [0, 1]."),
        "ci_high": ("number", "Upper end of the DeLong (Wald) CI, clipped to [0, 1]."),
        "n_pos": ("integer", "Gold-positive cases."),
        "n_neg": ("integer", "Gold-negative cases."),
        "reason": ("text", "Why the AUC or its CI was not computed (empty when it was)."),
    },
    "roc_points": {
        "source": ("text", "The source of the imported probabilities."),
        "finding": _FINDING,
        "point": ("integer", "Order of the point along the curve (thresholds high to low; at "
                             "most 200 points kept)."),
        "fpr": ("number", "False-positive rate at the threshold."),
        "tpr": ("number", "True-positive rate at the threshold."),
    },
    "labeller_validation": {
        "labeller": ("text", "The labeller's name."),
        "kind": ("text", "rules (rule-based, not a validated labeller) or llm."),
        "description": ("text", "How the labeller labels (its description)."),
        "finding": _FINDING,
        "n": ("integer", "Reference reports of gold-labelled cases the labeller labelled."),
        "support": ("integer", "Gold-positive cases among them."),
        "precision": ("number", "Precision of the labeller's labels of the reference reports "
                                "against the gold labels."),
        "recall": ("number", "Recall against the gold labels."),
        "f1": ("number", "F1 against the gold labels."),
    },
    "report_level_metrics": {
        "comparison": _COMPARISON, "source": _RUN_SOURCE,
        "case_id": ("text", "Pseudonymous case id."),
        "bleu1": ("number", "The report's smoothed sentence-level BLEU-1 against its reference."),
        "bleu4": ("number", "The report's smoothed sentence-level BLEU-4 against its reference."),
        "rouge_l": ("number", "The report's ROUGE-L F-measure against its reference."),
        # Only the model metrics computed per report have a column (BERTScore); RadGraph,
        # CheXbert and GREEN are never computed, so report_metrics' <metric>_note says why.
        **{key: ("number", f"The report's {metrics_model_metrics.SPECS[key].title} against "
                           f"its reference, when the run computed it (else empty: see "
                           f"report_metrics' {key}_note).")
           for key in metrics_compute.PER_REPORT_METRICS if key in metrics_model_metrics.SPECS},
        **_FINDING_LABEL_COLUMNS,
    },
}


def long_format(ratings_frame: pd.DataFrame, readings_frame: pd.DataFrame) -> pd.DataFrame:
    """One observation per row (ratings, then reading times as instruments), for R's
    ``read.csv``: numeric ``value`` where it is a number, ``answer`` as text always."""
    r = ratings_frame
    rated = pd.DataFrame({
        "trial": r["trial"], "campaign": r["campaign"], "case": r["case"], "site": r["site"],
        "source": r["source"], "arm": r["arm"], "reader": r["reader"], "rater": r["rater"],
        "instrument": r["instrument"], "value": pd.to_numeric(r["value"], errors="coerce"),
        "answer": r["chosen_source"].where(r["chosen_source"].notna(), r["answer"])
        .astype(object),
    })
    parts = [rated]
    submitted = readings_frame[readings_frame["reading_seconds"].notna()]
    for column in ("reading_seconds", "active_seconds"):
        parts.append(pd.DataFrame({
            "trial": submitted["trial"], "campaign": None, "case": submitted["case"],
            "site": submitted["site"], "source": submitted["arm"], "arm": submitted["arm"],
            "reader": submitted["reader"], "rater": None, "instrument": column,
            "value": pd.to_numeric(submitted[column], errors="coerce"), "answer": None,
        }))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=LONG_COLUMNS)
    long = pd.concat(parts, ignore_index=True)[LONG_COLUMNS]
    long["campaign"] = long["campaign"].astype("Int64")  # empty for reading times
    return long


def data_dictionary(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per column of every table exported: table, column, type, description."""
    rows = []
    for table, frame in frames.items():
        known = DATA_DICTIONARY.get(table) or METRIC_DICTIONARY.get(table, {})
        for column in frame.columns:
            kind, text = known.get(column, ("", "(not documented)"))
            rows.append({"table": table, "column": column, "type": kind,
                         "description": text})
    rows.append({"table": "(every table)", "column": "(every text cell)", "type": "text",
                 "description": NEUTRALISATION_NOTE})
    return pd.DataFrame(rows, columns=["table", "column", "type", "description"])


def csv_files(frames: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """Every table as ``<name>.csv`` (in the frames' order), then ``DICTIONARY_CSV``: the one
    serialisation the CSV export, the zip download and the data snapshot hash all use (the
    hash is over the report's tables' files, in this order, the dictionary left out; the
    report's frames have no report_texts, the zip download's do)."""
    files = {f"{name}.csv": csv_bytes(frame) for name, frame in frames.items()}
    files[DICTIONARY_CSV] = csv_bytes(data_dictionary(frames))
    return files


def export_csv(files: dict[str, bytes], directory: Path | str) -> list[Path]:
    """Write :func:`csv_files` into ``directory``; returns the paths in the written order."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        written.append(path)
    return written


#: Column widths of the XLSX sheets, in characters: the longest cell (line) or header, within.
MIN_WIDTH, MAX_WIDTH = 8, 60


def _width(header: str, column: pd.Series) -> int:
    lengths = [len(str(header))]
    cells = column.dropna().astype(str)
    if len(cells):
        if cells.str.contains("\n", regex=False).any():  # report texts: the longest line
            cells = cells.str.split("\n").explode()
        lengths.append(int(cells.str.len().max()))
    return min(MAX_WIDTH, max(MIN_WIDTH, max(lengths) + 2))


def _write_sheet(writer: pd.ExcelWriter, name: str, frame: pd.DataFrame) -> None:
    """``frame`` neutralised on sheet ``name``: header row frozen, an autofilter over every
    column, widths fitted to the contents; numbers (int, float columns, and numbers in object
    columns) are written as numbers, text as text."""
    from openpyxl.utils import get_column_letter

    safe = neutralise_frame(frame)
    safe.to_excel(writer, sheet_name=name, index=False)
    sheet = writer.sheets[name]
    sheet.freeze_panes = "A2"
    if safe.shape[1]:
        sheet.auto_filter.ref = f"A1:{get_column_letter(safe.shape[1])}{len(safe) + 1}"
    for position, header in enumerate(safe.columns, start=1):
        sheet.column_dimensions[get_column_letter(position)].width = _width(
            header, safe.iloc[:, position - 1])


def export_xlsx(frames: dict[str, pd.DataFrame], path: Path | str | BinaryIO) -> None:
    """One sheet per table and a "data dictionary" sheet describing every column; cells are
    neutralised as in the CSVs (openpyxl would otherwise store text starting with ``=`` as a
    live formula). Every sheet: header row frozen, autofilter, fitted column widths."""
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in frames.items():
            _write_sheet(writer, name[:31], frame)
        _write_sheet(writer, "data dictionary", data_dictionary(frames))


#: The tables the data snapshot hash is over, in this order (``analysis.report.provenance``).
SNAPSHOT_TABLES = ("cases", "readings", "ratings", "long")


def export_frames(trial: Trial, *, texts: bool = False,
                  metrics: bool = False) -> dict[str, pd.DataFrame]:
    """The tidy tables of a trial, in the fixed export order: cases, readings, ratings, long;
    with ``texts``, then ``report_texts`` (:func:`report_texts`); with ``metrics``, then the
    newest metrics run's tables (:func:`metric_frames`, none without a run). Only the
    statistician's and coordinator's downloads ask for texts (``analysis.views``); the
    report's data snapshot and its hash are over the four tables (``SNAPSHOT_TABLES``)."""
    rating_rows, reading_rows = ratings(trial), readings(trial)
    frames = {"cases": cases(trial, readings_frame=reading_rows), "readings": reading_rows,
              "ratings": rating_rows, "long": long_format(rating_rows, reading_rows)}
    if texts:
        frames["report_texts"] = report_texts(trial)
    if metrics:
        frames.update(metric_frames(trial))
    return frames
