"""The rating instruments of ``PROTOCOL.md``: codes, levels and the wording raters see.

A single-report instrument rates one report (against the reference report where it says
so); a pair instrument compares two reports shown side by side as "Report A" and "Report B".
Values are stored as the rater gave them (level codes; "A"/"B" for pairs, resolved to the
reports through the stored side assignment).
"""

from __future__ import annotations

from dataclasses import dataclass

LIKERT = "likert"
RADPEER = "radpeer"
ACCEPTABILITY = "acceptability"
ERRORS = "errors"
PREFERENCE = "preference"
SOURCE_ID = "source_id"

RADPEER_REFERENCE = "reference"  # 1-5, as the reference trial used it (5 = best)
RADPEER_ACR2016 = "acr2016"  # ACR RADPEER 2016: 1 / 2a / 2b / 3a / 3b

ERROR_TYPES = (
    ("false_finding", "False finding"),
    ("omitted_finding", "Omitted finding"),
    ("wrong_location", "Wrong location"),
    ("wrong_severity", "Wrong severity"),
    ("false_comparison", "False comparison"),
    ("omitted_comparison", "Omitted comparison"),
)


@dataclass(frozen=True)
class Level:
    code: str
    label: str
    text: str


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    question: str
    levels: tuple[Level, ...]
    pair: bool = False
    needs_reference: bool = False

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(level.code for level in self.levels)


LIKERT_LEVELS = (
    Level("5", "5", "Structure, terminology and reasoning flawless; every finding precisely "
                    "described in clinical context; diagnosis matches the gold standard."),
    Level("4", "4", "Minor formatting or terminology deviations; one or two non-critical "
                    "findings less precise; diagnosis correct but may lack nuance."),
    Level("3", "3", "The basic sections are present; some findings unclear or partly wrong but "
                    "the main abnormalities identified; diagnosis directionally correct."),
    Level("2", "2", "A major section missing or confusing flow; several errors that affect "
                    "interpretation; diagnosis questionable but not dangerous."),
    Level("1", "1", "Unreadable or medically dangerous errors; critical findings missed or "
                    "misrepresented; diagnosis contradicts the image."),
)
RADPEER_REFERENCE_LEVELS = (
    Level("5", "5", "Complete agreement with the reference report."),
    Level("4", "4", "Understandable miss, clinically insignificant."),
    Level("3", "3", "Understandable miss, clinically significant."),
    Level("2", "2", "Discrepancy, clinically insignificant."),
    Level("1", "1", "Discrepancy, clinically significant."),
)
RADPEER_ACR_LEVELS = (
    Level("1", "1", "Concur with the interpretation."),
    Level("2a", "2a", "Discrepancy in interpretation, not ordinarily expected to be made "
                      "(understandable miss); unlikely to be clinically significant."),
    Level("2b", "2b", "Discrepancy in interpretation, not ordinarily expected to be made "
                      "(understandable miss); likely to be clinically significant."),
    Level("3a", "3a", "Discrepancy in interpretation that should be made most of the time; "
                      "unlikely to be clinically significant."),
    Level("3b", "3b", "Discrepancy in interpretation that should be made most of the time; "
                      "likely to be clinically significant."),
)
ACCEPTABILITY_LEVELS = (
    Level("A", "A", "Accept as is."),
    Level("B", "B", "Accept after minor revision."),
    Level("C", "C", "Major revision needed."),
    Level("D", "D", "Unacceptable."),
)
AB = (Level("A", "Report A", "Report A"), Level("B", "Report B", "Report B"))


def instrument(code: str, *, radpeer_variant: str = RADPEER_REFERENCE) -> Instrument:
    """The instrument ``code`` (RADPEER in the campaign's variant)."""
    if code == LIKERT:
        return Instrument(LIKERT, "Report quality", "Rate the quality of the report (5 best).",
                          LIKERT_LEVELS)
    if code == RADPEER:
        acr = radpeer_variant == RADPEER_ACR2016
        return Instrument(
            RADPEER, "Agreement with the reference (RADPEER)",
            "How does the report agree with the reference report?",
            RADPEER_ACR_LEVELS if acr else RADPEER_REFERENCE_LEVELS, needs_reference=True)
    if code == ACCEPTABILITY:
        return Instrument(ACCEPTABILITY, "Acceptability", "Could this report be signed?",
                          ACCEPTABILITY_LEVELS)
    if code == ERRORS:
        return Instrument(ERRORS, "Errors", "Count the errors against the reference report, "
                          "by type and clinical significance.", (), needs_reference=True)
    if code == PREFERENCE:
        return Instrument(PREFERENCE, "Preference", "Which report is better?", AB, pair=True)
    if code == SOURCE_ID:
        return Instrument(SOURCE_ID, "Source identification",
                          "Which report did the AI model write? Judge by style only.", AB,
                          pair=True)
    raise ValueError(f"Unknown instrument {code!r}.")


ALL = (LIKERT, RADPEER, ACCEPTABILITY, ERRORS, PREFERENCE, SOURCE_ID)
SINGLE = (LIKERT, RADPEER, ACCEPTABILITY, ERRORS)
PAIR = (PREFERENCE, SOURCE_ID)
CHOICES = [(code, instrument(code).name) for code in ALL]


def validate(code: str, value: object, *, radpeer_variant: str = RADPEER_REFERENCE) -> object:
    """The value normalised, or ValueError saying what a valid one is."""
    spec = instrument(code, radpeer_variant=radpeer_variant)
    if code == ERRORS:
        if not isinstance(value, dict):
            raise ValueError("Errors: give counts by type, e.g. {\"false_finding\": "
                             "{\"significant\": 1, \"insignificant\": 0}}.")
        counts = {}
        for key, _ in ERROR_TYPES:
            entry = value.get(key, {}) or {}
            if not isinstance(entry, dict):
                raise ValueError(f"Errors: {key} needs significant and insignificant counts.")
            pair = {}
            for part in ("significant", "insignificant"):
                number = entry.get(part, 0)
                if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 50:
                    raise ValueError(f"Errors: {key} {part} must be a whole number 0-50.")
                pair[part] = number
            counts[key] = pair
        unknown = set(value) - {key for key, _ in ERROR_TYPES}
        if unknown:
            raise ValueError(f"Errors: unknown type(s) {sorted(unknown)}.")
        return counts
    text = str(value).strip() if value is not None else ""
    if text not in spec.codes:
        raise ValueError(f"{spec.name}: choose one of {', '.join(spec.codes)}.")
    return text
