"""Reports for a retrospective campaign from CSV: ``case_id,source,findings,impression``.

One file is one transaction: if any row is wrong nothing is imported, and every problem is
reported with its line number. The source named ``published`` is the case's published report
(the reference); any other name is a source to rate (a model's outputs, say).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db import transaction

from trial import audit
from trial.errors import Invalid
from trial.lifecycle import check_writable
from trial.models import Arm, Case

from .build import AI_ALONE, make_report, source_names
from .models import Campaign, RatedReport

COLUMNS = ("case_id", "source", "findings", "impression")
MAX_BYTES = 20 * 1024 * 1024
RESERVED = {Arm.AI_ASSISTED.value, Arm.SCP.value, AI_ALONE}
SHOWN_PROBLEMS = 50


class ReportImportError(Invalid):
    """The file was refused (400); ``problems`` lists each reason (line numbers are the file's)."""

    problems_heading = "Nothing imported:"
    list_one_problem = True

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:SHOWN_PROBLEMS]
        more = len(problems) - len(shown)
        super().__init__("Nothing imported: " + "; ".join(shown)
                         + (f"; and {more} more" if more > 0 else ""), problems=problems)


def csv_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if len(data) > MAX_BYTES:
        raise ReportImportError([f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB"])
    if b"\x00" in data[:4096]:
        raise ReportImportError(["this is not a CSV text file (binary content)"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportImportError([f"the file is not UTF-8 text (byte {exc.start})"]) from exc


def import_reports(campaign: Campaign, data: bytes | str, *, by: Any = None) -> int:
    """Add the file's reports to a retrospective campaign; returns how many."""
    check_writable(campaign.trial_id, "The campaign")
    if campaign.kind != Campaign.Kind.RETROSPECTIVE:
        raise ReportImportError(["reports are imported into retrospective campaigns only"])
    # strict: an unclosed quote is an error, not the rest of the file swallowed into one field
    reader = csv.DictReader(io.StringIO(csv_text(data), newline=""), strict=True)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ReportImportError([f"missing column(s) {', '.join(missing)}; the header must be "
                                 f"{','.join(COLUMNS)}"])
    cases = {c.case_id: c for c in Case.objects.filter(trial=campaign.trial)}
    existing = set(campaign.reports.values_list("case__case_id", "source"))
    # A built case is frozen: a report added to it would never be rated.
    built = set(campaign.items.values_list("case__case_id", flat=True))
    problems: list[str] = []
    rows: list[tuple[Case, str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    try:
        for raw in reader:
            line = reader.line_num
            row = {(k or "").strip().lower(): (v or "") for k, v in raw.items() if k}
            if None in raw:
                problems.append(f"line {line}: more fields than the header")
                continue
            if None in raw.values():
                problems.append(f"line {line}: fewer fields than the header")
                continue
            case_id, source = row["case_id"].strip(), row["source"].strip()
            findings, impression = row["findings"].strip(), row["impression"].strip()
            if not case_id:
                problems.append(f"line {line}: case_id is empty")
                continue
            if case_id not in cases:
                problems.append(f"line {line}: no case {case_id!r} in this trial")
                continue
            if case_id in built:
                problems.append(f"line {line}: case {case_id!r} already has items in this "
                                "campaign; its reports cannot change")
                continue
            if not source:
                problems.append(f"line {line}: source is empty")
                continue
            if len(source) > 60:
                problems.append(f"line {line}: source name longer than 60 characters")
                continue
            if source.lower() in RESERVED:
                problems.append(f"line {line}: source {source!r} is reserved for the trial's "
                                "own reports")
                continue
            if source.lower() == RatedReport.PUBLISHED:
                source = RatedReport.PUBLISHED
            if not (findings or impression):
                problems.append(f"line {line}: both findings and impression are empty")
                continue
            key = (case_id, source)
            if key in seen or key in existing:
                where = "earlier in this file" if key in seen else "already in the campaign"
                problems.append(f"line {line}: {case_id} / {source} is {where}")
                continue
            seen.add(key)
            rows.append((cases[case_id], source, findings, impression))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
    if problems:
        raise ReportImportError(problems)
    if not rows:
        raise ReportImportError(["the file has no rows"])
    with transaction.atomic():
        names = source_names(campaign) | {source for _, source, _, _ in rows
                                           if source != RatedReport.PUBLISHED}
        for case, source, findings, impression in rows:
            make_report(campaign, case, source, findings, impression, names=names)
        audit.record(action="campaign.reports_imported", obj=campaign, actor=by,
                     trial=campaign.trial, after={"reports": len(rows)})
    return len(rows)
