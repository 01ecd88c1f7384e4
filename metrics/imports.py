"""CSV imports: gold-standard labels and a source's per-finding probabilities.

As the report import: one file is one transaction (any wrong row and nothing is imported) and
every problem is reported with its line number. Finding columns are named as the 14 CheXpert
findings, in any case, with spaces or underscores ("Pleural Effusion", "pleural_effusion").

- Labels: ``case_id`` then the 14 findings, each 0 or 1.
- Probabilities: ``case_id,source`` then any of the findings, each a number in [0, 1] or empty
  (not given for that case).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterator
from typing import Any

from django.db import transaction

from rating.report_import import ReportImportError, csv_text
from reader.models import Reading
from trial import audit
from trial.findings import FINDINGS, with_no_finding
from trial.lifecycle import is_locked
from trial.models import Case, Trial

from . import jobs, sources
from .models import CaseLabels, Labeller, LabelSet, Probabilities, text_hash


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").split()).lower()


FINDING_BY_KEY = {_key(name): name for name in FINDINGS}


def _rows(data: bytes | str, required: tuple[str, ...]) -> tuple[csv.DictReader, dict[str, str]]:
    """The reader and a map from header to finding name; refuses a header without
    ``required`` columns or with a column that is neither required nor a finding."""
    reader = csv.DictReader(io.StringIO(csv_text(data), newline=""), strict=True)
    header = [h or "" for h in (reader.fieldnames or [])]
    keys = [_key(h) for h in header]
    missing = [c for c in required if c not in keys]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    findings: dict[str, str] = {}
    for raw, key in zip(header, keys, strict=True):
        if key in required:
            continue
        if key not in FINDING_BY_KEY:
            problems.append(f"column {raw!r} is not one of the 14 findings")
            continue
        if FINDING_BY_KEY[key] in findings.values():
            problems.append(f"column {raw!r} repeats a finding")
            continue
        findings[raw] = FINDING_BY_KEY[key]
    if problems:
        raise ReportImportError(problems)
    return reader, findings


def _cell(raw: dict, header: str) -> str:
    return (raw.get(header) or "").strip()


def _shape_problem(raw: dict, line: int) -> str | None:
    if None in raw:
        return f"line {line}: more fields than the header"
    if None in raw.values():
        return f"line {line}: fewer fields than the header"
    return None


def _case_col(reader: csv.DictReader) -> str:
    return next(h for h in reader.fieldnames if _key(h) == "case id")


def _case_rows(reader: csv.DictReader, trial: Trial,
               problems: list[str]) -> Iterator[tuple[int, dict, int]]:
    """(line, row, case pk) of each well-formed row naming a case of the trial; every other
    row (and a CSV syntax error) is a problem with its line."""
    case_col = _case_col(reader)
    cases = dict(Case.objects.filter(trial=trial).values_list("case_id", "pk"))
    try:
        for raw in reader:
            line = reader.line_num
            shape = _shape_problem(raw, line)
            if shape:
                problems.append(shape)
                continue
            case_id = _cell(raw, case_col)
            if case_id not in cases:
                problems.append(f"line {line}: no case {case_id!r} in this trial" if case_id
                                else f"line {line}: case_id is empty")
                continue
            yield line, raw, cases[case_id]
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV ({exc})")


def import_labels(trial: Trial, data: bytes | str, *, name: str, description: str = "",
                  gold: bool = False, by: Any = None) -> LabelSet:
    """A new label set from the file (every case of the trial it names, 0/1 per finding)."""
    name = " ".join(name.split())
    if not name:
        raise ReportImportError(["the label set needs a name"])
    if LabelSet.objects.filter(trial=trial, name=name).exists():
        raise ReportImportError([f"there is already a label set named {name!r}"])
    _check_gold(trial, gold)
    reader, columns = _rows(data, ("case id",))
    if set(columns.values()) != set(FINDINGS):
        raise ReportImportError(["missing finding column(s) " + ", ".join(
            f for f in FINDINGS if f not in columns.values())])
    problems: list[str] = []
    rows: dict[int, dict[str, int]] = {}
    for line, raw, case in _case_rows(reader, trial, problems):
        if case in rows:
            problems.append(f"line {line}: case {_cell(raw, _case_col(reader))} is earlier "
                            "in this file")
            continue
        labels = {}
        for header, finding in columns.items():
            value = _cell(raw, header)
            if value not in ("0", "1"):
                problems.append(f"line {line}: {finding} is {value!r}, not 0 or 1")
                continue
            labels[finding] = int(value)
        if len(labels) == len(FINDINGS):
            rows[case] = {f: labels[f] for f in FINDINGS}
    if problems:
        raise ReportImportError(problems)
    if not rows:
        raise ReportImportError(["the file has no rows"])
    digest = hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()
    with transaction.atomic():
        label_set = LabelSet.objects.create(
            trial=trial, name=name, provenance=LabelSet.Provenance.IMPORTED,
            description=description, gold=gold, file_sha256=digest, created_by=by)
        CaseLabels.objects.bulk_create(
            [CaseLabels(label_set=label_set, case_id=pk, labels=labels)
             for pk, labels in rows.items()], batch_size=1000)
        audit.record(action="label_set.imported", obj=label_set, actor=by, trial=trial,
                     after={"cases": len(rows), "gold": gold, "sha256": digest})
    return label_set


def import_probabilities(trial: Trial, data: bytes | str, *, by: Any = None) -> int:
    """Add (or replace, per case and source) a source's per-finding probabilities."""
    reader, columns = _rows(data, ("case id", "source"))
    if not columns:
        raise ReportImportError(["no finding columns: name at least one of the 14 findings"])
    source_col = next(h for h in reader.fieldnames if _key(h) == "source")
    problems: list[str] = []
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for line, raw, case in _case_rows(reader, trial, problems):
        source = _cell(raw, source_col)
        if not source or len(source) > 60:
            problems.append(f"line {line}: source must be 1-60 characters")
            continue
        if (source, case) in rows:
            problems.append(f"line {line}: {_cell(raw, _case_col(reader))} / {source} is "
                            "earlier in this file")
            continue
        values = {}
        for header, finding in columns.items():
            cell = _cell(raw, header)
            if not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not 0.0 <= value <= 1.0:  # NaN fails too
                problems.append(f"line {line}: {finding} is {cell!r}, not a probability "
                                "in [0, 1]")
                continue
            values[finding] = value
        rows[source, case] = values
    if problems:
        raise ReportImportError(problems)
    if not rows:
        raise ReportImportError(["the file has no rows"])
    with transaction.atomic():
        for (source, case_pk), values in rows.items():
            Probabilities.objects.update_or_create(
                trial=trial, source=source, case_id=case_pk, defaults={"values": values})
        audit.record(action="probabilities.imported", obj=trial, actor=by, trial=trial,
                     after={"rows": len(rows),
                            "sources": sorted({source for source, _ in rows})})
    return len(rows)


def _check_gold(trial: Trial, gold: bool) -> None:
    """One gold standard per trial, chosen before the lock: after unblinding a new gold set
    could move cases in or out of the complex-case subgroup (other label sets may still come)."""
    if gold and is_locked(trial):
        raise ReportImportError(["the trial is locked: its gold standard cannot be set any "
                                 "more (import these labels as a label set that is not gold)"])
    if gold and LabelSet.objects.filter(trial=trial, gold=True).exists():
        raise ReportImportError(["the trial already has a gold-standard label set"])


def label_set_from_ticks(trial: Trial, *, name: str, gold: bool = False,
                         by: Any = None) -> LabelSet:
    """A label set from the findings the readers ticked: a case's finding is 1 when any
    submitted reading of it ticked it (so No Finding is recomputed, CheXpert's rule)."""
    if LabelSet.objects.filter(trial=trial, name=name).exists():
        raise ReportImportError([f"there is already a label set named {name!r}"])
    _check_gold(trial, gold)
    ticked: dict[int, set[str]] = {}
    for case_pk, labels in Reading.objects.filter(
            assignment__case__trial=trial, status=Reading.Status.SUBMITTED).values_list(
            "assignment__case", "labels"):
        ticked.setdefault(case_pk, set()).update(f for f in labels or [] if f in FINDINGS)
    if not ticked:
        raise ReportImportError(["no submitted readings to take ticked findings from"])
    with transaction.atomic():
        label_set = LabelSet.objects.create(
            trial=trial, name=name, provenance=LabelSet.Provenance.READER_TICKS, created_by=by,
            gold=gold,
            description="A finding is 1 when any submitted reading of the case ticked it.")
        CaseLabels.objects.bulk_create([
            CaseLabels(label_set=label_set, case_id=pk,
                       labels=with_no_finding({f: int(f in found) for f in FINDINGS}))
            for pk, found in ticked.items()], batch_size=1000)
        audit.record(action="label_set.made", obj=label_set, actor=by, trial=trial,
                     after={"cases": len(ticked), "provenance": label_set.provenance})
    return label_set


def label_set_from_reports(trial: Trial, labeller: Labeller, *, name: str, gold: bool = False,
                           by: Any = None) -> LabelSet:
    """A label set from the reference reports (the senior's signed final reports, and the
    published reports of retrospective campaigns) as labelled by ``labeller``: the reference
    trial's way of getting reference labels without a second reading. Every reference text
    must already be labelled by the labeller's current configuration (``label_reports``)."""
    if LabelSet.objects.filter(trial=trial, name=name).exists():
        raise ReportImportError([f"there is already a label set named {name!r}"])
    _check_gold(trial, gold)
    texts: dict[int, str] = {}
    for comparison in sources.comparisons(trial):
        if comparison.reference != sources.AI_DRAFT:
            for case, text in comparison.references.items():
                texts.setdefault(case, text)
    if not texts:
        raise ReportImportError(["no signed final or published reports to label"])
    found = jobs.labels_of(labeller, list(texts.values()))
    missing = [case for case, text in texts.items() if text_hash(text) not in found]
    if missing:
        raise ReportImportError([f"{len(missing)} of {len(texts)} reference reports have no "
                                 f"labels from {labeller.name} yet: run label_reports first"])
    with transaction.atomic():
        label_set = LabelSet.objects.create(
            trial=trial, name=name, provenance=LabelSet.Provenance.FINAL_REPORTS,
            labeller=labeller, fingerprint=labeller.fingerprint, created_by=by, gold=gold,
            description=f"The reference reports labelled by {labeller.description}.")
        CaseLabels.objects.bulk_create([
            CaseLabels(label_set=label_set, case_id=case,
                       labels=with_no_finding(found[text_hash(text)].labels))
            for case, text in texts.items()], batch_size=1000)
        audit.record(action="label_set.made", obj=label_set, actor=by, trial=trial,
                     after={"cases": len(texts), "provenance": label_set.provenance,
                            "labeller": labeller.fingerprint})
    return label_set
