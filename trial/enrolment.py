"""Screening, eligibility, consent and enrolment of cases (the CONSORT flow starts here).

TO BE IMPLEMENTED (signatures fixed).
"""

from __future__ import annotations

from .models import Case


class EnrolmentError(Exception):
    """A case cannot move to the asked status; the message says why."""


def evaluate_eligibility(case: Case, answers: dict[str, bool]) -> tuple[bool, list[str]]:
    raise NotImplementedError


def screen(case: Case, *, answers: dict[str, bool], by) -> Case:
    raise NotImplementedError


def record_consent(case: Case, *, by) -> Case:
    raise NotImplementedError


def enrol(case: Case, *, by) -> Case:
    raise NotImplementedError


def exclude(case: Case, *, reason: str, by) -> Case:
    raise NotImplementedError
