"""Clinical history from a CSV, matched to images by AccessionNumber or PatientID.

Matching happens on the source identifiers, before de-identification removes them; the
identifiers themselves are never stored, only the four history fields.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

KEY_COLUMNS = ("accession_number", "patient_id")
FIELDS = ("chief_complaint", "history", "lab_results", "prior_imaging")


class HistoryCsvError(ValueError):
    """The history CSV cannot be used; the message says what was expected."""


@dataclass
class HistoryTable:
    by_accession: dict[str, dict[str, str]]
    by_patient_id: dict[str, dict[str, str]]

    def find(self, ds: Dataset) -> dict[str, str] | None:
        """The history row for this image: accession number first, then patient ID."""
        accession = str(ds.get("AccessionNumber", "") or "").strip()
        if accession and accession in self.by_accession:
            return self.by_accession[accession]
        patient_id = str(ds.get("PatientID", "") or "").strip()
        return self.by_patient_id.get(patient_id) if patient_id else None


def load_history(path: Path | str) -> HistoryTable:
    """Read and check the CSV; raises ``HistoryCsvError`` for a missing file or a bad header."""
    path = Path(path)
    if not path.is_file():
        raise HistoryCsvError(f"history CSV not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [(name or "").strip() for name in (reader.fieldnames or [])]
        _check_header(header)
        reader.fieldnames = header
        table = HistoryTable(by_accession={}, by_patient_id={})
        for row in reader:
            fields = {f: (row.get(f) or "").strip() for f in FIELDS}
            accession = (row.get("accession_number") or "").strip()
            patient_id = (row.get("patient_id") or "").strip()
            if accession:
                table.by_accession[accession] = fields
            if patient_id:
                table.by_patient_id[patient_id] = fields
    return table


def _check_header(header: list[str]) -> None:
    expected = "accession_number or patient_id, " + ", ".join(FIELDS)
    got = ", ".join(header) or "(empty)"
    if not any(k in header for k in KEY_COLUMNS):
        raise HistoryCsvError(
            f"history CSV header needs an accession_number or patient_id column; "
            f"expected columns: {expected}; got: {got}"
        )
    missing = [f for f in FIELDS if f not in header]
    unknown = [h for h in header if h not in (*KEY_COLUMNS, *FIELDS)]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(unknown)}")
        raise HistoryCsvError(
            f"history CSV header: {'; '.join(problems)}; expected columns: {expected}; "
            f"got: {got}"
        )
