"""Case assignment: each enrolled case to one reader of each arm, balanced; random worklist order.

TO BE IMPLEMENTED (signatures fixed).
"""

from __future__ import annotations

from .models import Assignment, Trial


class AssignmentError(Exception):
    pass


def assign_cases(trial: Trial, *, by, seed: int | None = None) -> list[Assignment]:
    raise NotImplementedError
